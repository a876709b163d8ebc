//go:build !unix

package bench

import "time"

// cpuTime is not measured on this platform; results show 0.
func cpuTime() time.Duration { return 0 }
