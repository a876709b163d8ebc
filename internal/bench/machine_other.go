//go:build !linux

package bench

// machineTimes are not measured on this platform; MachineCPUBusy stays 0.
type machineTimes struct{}

func machineCPU() machineTimes                      { return machineTimes{} }
func (machineTimes) busySince(machineTimes) float64 { return 0 }
