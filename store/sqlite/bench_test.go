package sqlite

import (
	"context"
	"path/filepath"
	"testing"

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
