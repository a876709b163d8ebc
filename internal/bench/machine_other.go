//go:build !linux

package bench

import "time"

// machineTimes are not measured on this platform; MachineCPUBusy stays 0.
type machineTimes struct{}

func machineCPU() machineTimes                      { return machineTimes{} }
func (machineTimes) busySince(machineTimes) float64 { return 0 }

// processCPU and peakMemory are not measured on this platform; the results show 0.
func processCPU(int) time.Duration { return 0 }
func peakMemory(int) uint64        { return 0 }
