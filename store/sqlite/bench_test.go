package sqlite

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// BenchmarkHotPath runs storetest.HotPath (the engine's store traffic for a 3-activity sequence);
// orch/s is the figure to compare. Run it on a real disk:
//
//	go test ./store/sqlite -run '^$' -bench HotPath -benchtime 5000x -count 3
//	go test ./store/sqlite -run '^$' -bench HotPath -benchtime 5000x -count 3 -tags reprise_mattn
func BenchmarkHotPath(b *testing.B) {
	for _, d := range []struct {
		name string
		dur  Durability
	}{{"full", DurabilityFull}, {"relaxed", DurabilityRelaxed}} {
		b.Run(driverName+"/"+d.name, func(b *testing.B) { benchHotPath(b, d.dur) })
	}
}

func benchHotPath(b *testing.B, dur Durability) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Options{Durability: dur})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.HotPath(b, s)
}

// BenchmarkSequentialStep runs the store traffic of one step of a long sequence, one after
// another: claim the instance, commit an episode with one task, claim the task, complete it, and
// the empty claims the dispatchers make after each wake-up. The claims list the names of
// `reprise bench`'s app (five orchestrators, two activities), as the engine does; cpu-µs/step is
// the figure to compare.
//
//	go test ./store/sqlite -run '^$' -bench SequentialStep -benchtime 2000x -count 3
func BenchmarkSequentialStep(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "reprise.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateInstance(ctx, store.Instance{ID: "i", Name: "long_sequence", Status: store.StatusPending}, store.Message{Data: []byte("s")}, store.ReuseNever); err != nil {
		b.Fatal(err)
	}
	orchestrators := store.Names{"hello_sequence_orchestrator", "fan_out", "long_sequence", "timer", "idle"}
	activities := store.Names{"say_hello", "inc"}
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
