package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// machineTimes are the machine's CPU times (all cores, all processes) from /proc/stat, in ticks.
type machineTimes struct{ busy, total uint64 }

func machineCPU() machineTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := bytes.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return machineTimes{}
	}
	var t machineTimes
	for i, f := range fields[1:] {
		if i >= 8 { // guest times are already counted in user and nice
			break
		}
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return machineTimes{}
		}
		t.total += v
		if i != 3 && i != 4 { // idle and iowait are not busy
			t.busy += v
		}
	}
	return t
}

// busySince returns the busy share of the CPU time elapsed since start, or 0 if unknown.
func (t machineTimes) busySince(start machineTimes) float64 {
	if t.total <= start.total || start.total == 0 {
		return 0
	}
	return float64(t.busy-start.busy) / float64(t.total-start.total)
}

// userHZ is the unit of the CPU times in /proc/PID/stat: fixed at 100 by Linux's user ABI.
const userHZ = 100

// processCPU is the CPU time (user and system, all threads) that process pid has used so far,
// from /proc/PID/stat; 0 if unknown. Its resolution is 10ms.
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(data[i+1:]) // state (3) ppid (4) ... utime (14) stime (15)
	if len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / userHZ
}

// peakMemory is the peak resident memory of process pid (VmHWM in /proc/PID/status); 0 if unknown.
func peakMemory(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
