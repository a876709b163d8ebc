package bench

import (
	"runtime/metrics"
	"time"
)

// The Go runtime's memory minus what it has returned to the operating system: close to the
// resident memory the process needs, and readable cheaply and often.
const (
	metricTotal    = "/memory/classes/total:bytes"
	metricReleased = "/memory/classes/heap/released:bytes"
	metricHeapLive = "/memory/classes/heap/objects:bytes"
	metricStacks   = "/memory/classes/heap/stacks:bytes"
)

func readMemory(names ...string) []uint64 {
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := make([]uint64, len(names))
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[i] = s.Value.Uint64()
		}
	}
	return out
}

func memoryInUse() uint64 {
	m := readMemory(metricTotal, metricReleased)
	return m[0] - m[1]
}

// liveMemory is the bytes of live heap objects and goroutine stacks (a parked orchestration is
// both); call runtime.GC first for a settled figure.
func liveMemory() uint64 {
	m := readMemory(metricHeapLive, metricStacks)
	return m[0] + m[1]
}

type memorySampler struct {
	done chan struct{}
	peak chan uint64
}

// startMemorySampler records the peak of memoryInUse every 10ms until stop.
func startMemorySampler() *memorySampler {
	s := &memorySampler{done: make(chan struct{}), peak: make(chan uint64)}
	go func() {
		peak := memoryInUse()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, memoryInUse())
			case <-s.done:
				s.peak <- max(peak, memoryInUse())
				return
			}
		}
	}()
	return s
}

func (s *memorySampler) stop() uint64 {
	close(s.done)
	return <-s.peak
}
