package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/internal/bench"
)

// TestBenchAllScenarios runs `reprise bench` with a small N: every scenario runs, passes its
// output checks and reports its figures.
func TestBenchAllScenarios(t *testing.T) {
	r := runCLI(t, nil, "bench", "-n", "6", "--timer-delay", "10ms", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var results []bench.Result
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("--json output is not a JSON array of results: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, res := range results {
		names = append(names, res.Scenario)
		if res.Completed != 6 || res.Seconds <= 0 {
			t.Errorf("%s: completed %d in %gs, want 6 in a positive time", res.Scenario, res.Completed, res.Seconds)
		}
	}
	if !slices.Equal(names, bench.Names()) {
		t.Errorf("scenarios %v, want %v", names, bench.Names())
	}
	if r.stderr != "" {
		t.Errorf("stderr is not a terminal, so no progress bar; got %q", r.stderr)
	}
}

func TestBenchTextAndStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bench.db")
	r := runCLI(t, nil, "bench", "latency", "hello-sequence", "-n", "3", "--store", db)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{"latency", "hello-sequence", "orch/s", "p99", "CPU/orch", "peak mem", db} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "no-such-scenario"},
		{"bench", "-n", "-4"},
		{"bench", "--store", "mysql://localhost/db"},
		{"bench", "--duration", "soon"},
	} {
		r := runCLI(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "Usage: reprise bench") {
			t.Errorf("reprise %s: exit %d, stderr %q; want 2 with the usage", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
