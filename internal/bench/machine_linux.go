package bench

import (
	"bytes"
	"os"
	"strconv"
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
