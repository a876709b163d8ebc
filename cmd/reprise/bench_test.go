package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/internal/bench"
	"github.com/reprise-dev/reprise/internal/pgtest"
)

// workerEnv makes this test binary act as `reprise` when a test starts it as a bench worker
// (bench --hosts N starts os.Executable(), which under go test is the test binary).
const workerEnv = "REPRISE_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// TestBenchHosts runs hello-sequence on two hosts sharing a PostgreSQL database: this process
// and a bench-worker process. Every instance completes, and the activity counts of the two hosts
// add up to every invocation, once.
func TestBenchHosts(t *testing.T) {
	dsn := pgtest.DSN(t)
	t.Setenv(workerEnv, "1")
	r := runCLI(t, nil, "bench", "hello-sequence", "-n", "40", "--hosts", "2", "--store", dsn, "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var results []bench.Result
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil || len(results) != 1 {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	res := results[0]
	if res.Hosts != 2 || res.Completed != 40 || len(res.ActivitiesPerHost) != 2 {
		t.Fatalf("hosts %d, completed %d, activities per host %v; want 2 hosts, 40 completed, 2 counts", res.Hosts, res.Completed, res.ActivitiesPerHost)
	}
	// An activity may run twice only if a lease expired, which does not happen in a healthy run.
	if sum := res.ActivitiesPerHost[0] + res.ActivitiesPerHost[1]; sum != 120 {
		t.Errorf("activities per host %v add up to %d, want 120 (40 instances × 3)", res.ActivitiesPerHost, sum)
	}
}

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
		{"bench", "--hosts", "0"},
		{"bench", "--hosts", "3", "--store", "bench.db"},
		{"bench", "latency", "grpc"},
		{"bench", "grpc", "latency"},
		{"bench", "grpc", "-n", "0"},
		{"bench", "grpc", "--workers", "python"},
		{"bench", "grpc", "--backends", ""},
		{"bench", "grpc", "--timeout", "-1s"},
	} {
		r := runCLI(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "Usage: reprise bench") {
			t.Errorf("reprise %s: exit %d, stderr %q; want 2 with the usage", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestBenchGRPC runs `reprise bench grpc` with tiny counts on reprise serve (a process of this
// test binary) with the durabletask-go worker (built from interop/durabletask-go, so it needs go):
// every instance of both runs completes with the right output, and the figures are there.
func TestBenchGRPC(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: go is not on PATH, and the durabletask-go worker is built with it")
	}
	t.Setenv(workerEnv, "1") // reprise serve is os.Executable(), this test binary
	r := runCLI(t, nil, "bench", "grpc", "--backends", "reprise", "--workers", "go", "-n", "12", "--latency-n", "3", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	var results []bench.GRPCResult
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil || len(results) != 1 {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	res := results[0]
	if res.Backend != "reprise" || res.Worker != "go" || res.Error != "" {
		t.Fatalf("result %+v, want reprise with the go worker and no error", res)
	}
	if res.Completed != 12 || res.OrchestrationsPerSecond <= 0 {
		t.Errorf("throughput run: %d of %d completed at %g/s, want all 12 at a positive rate", res.Completed, res.N, res.OrchestrationsPerSecond)
	}
	if res.Latency == nil || res.LatencyN != 3 {
		t.Errorf("latency run: %d instances, percentiles %v; want 3 and their percentiles", res.LatencyN, res.Latency)
	}
}
