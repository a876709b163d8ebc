package memory

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// BenchmarkHotPath runs storetest.HotPath (the engine's store traffic for a 3-activity sequence)
// on the in-memory store; orch/s compares with store/sqlite's BenchmarkHotPath.
//
//	go test ./store/memory -run '^$' -bench HotPath -benchtime 20000x -count 3
func BenchmarkHotPath(b *testing.B) {
	s := New(Options{})
	defer s.Close()
	storetest.HotPath(b, s)
}

// BenchmarkSequentialStep is store/sqlite's benchmark of the same name on the in-memory store:
// one step of a long sequence, with the empty claims the dispatchers make after each wake-up,
// while 10000 other instances wait under a lease or for a timer, so that a claim that scanned
// them would show. cpu-µs/step is the figure to compare.
//
//	go test ./store/memory -run '^$' -bench SequentialStep -benchtime 20000x -count 3
func BenchmarkSequentialStep(b *testing.B) {
	ctx := context.Background()
	s := New(Options{})
	defer s.Close()
	orchestrators := store.Names{"hello_sequence_orchestrator", "fan_out", "long_sequence", "timer", "idle"}
	activities := store.Names{"say_hello", "inc"}
	for i := range 10000 {
		id := fmt.Sprintf("waiting-%05d", i)
		start := store.Message{Data: []byte("s")}
		if i%2 == 0 {
			start.VisibleAt = time.Now().Add(time.Hour) // a timer
		}
		if err := s.CreateInstance(ctx, store.Instance{ID: id, Name: "timer", Status: store.StatusPending}, start, store.ReuseNever); err != nil {
			b.Fatal(err)
		}
	}
	// The visible half is leased for the length of the benchmark.
	if w, err := s.ClaimOrchestrations(ctx, "other", orchestrators, 10000, time.Hour); err != nil || len(w) != 5000 {
		b.Fatal(len(w), err)
	}
	if err := s.CreateInstance(ctx, store.Instance{ID: "i", Name: "long_sequence", Status: store.StatusPending}, store.Message{Data: []byte("s")}, store.ReuseNever); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := processCPU()
	for b.Loop() {
		work, err := s.ClaimOrchestrations(ctx, "n", orchestrators, 1000, time.Minute)
		if err != nil || len(work) != 1 {
			b.Fatal(len(work), err)
		}
		if none, err := s.ClaimOrchestrations(ctx, "n", orchestrators, 1000, time.Minute); err != nil || len(none) != 0 {
			b.Fatal(len(none), err)
		}
		w := work[0]
		e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte("hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh")}}
		for _, m := range w.Messages {
			e.Consumed = append(e.Consumed, m.ID)
		}
		e.Tasks = []store.Task{{Name: "inc", Data: []byte("in")}}
		if err := s.CommitEpisode(ctx, e); err != nil {
			b.Fatal(err)
		}
		tasks, err := s.ClaimActivities(ctx, "n", activities, 1000, time.Minute)
		if err != nil || len(tasks) != 1 {
			b.Fatal(len(tasks), err)
		}
		if none, err := s.ClaimActivities(ctx, "n", activities, 1000, time.Minute); err != nil || len(none) != 0 {
			b.Fatal(len(none), err)
		}
		if err := s.CompleteActivity(ctx, tasks[0].Task.ID, tasks[0].Lease, store.Message{Data: []byte("result")}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/step")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
