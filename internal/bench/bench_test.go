package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/pgtest"
)

// TestEveryScenario runs each scenario with a small N and checks that it completed all of it and
// measured something.
func TestEveryScenario(t *testing.T) {
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			var last int
			// The idle scenario measures the memory its parked instances hold: with a dozen, the
			// garbage collected meanwhile can outweigh them, so it parks enough to be measurable.
			n := 12
			if sc.Name == "idle" {
				n = 400
			}
			cfg := Config{N: n, TimerDelay: 20 * time.Millisecond, Progress: func(done, total int) {
				if total != n || done < last {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			}}
			res, err := Run(context.Background(), sc.Name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Completed != n || res.Stopped || last != n {
				t.Fatalf("completed %d (stopped %v, progress %d), want %d: %+v", res.Completed, res.Stopped, last, n, res)
			}
			if res.Seconds <= 0 || res.CPUSeconds <= 0 || res.PeakMemoryBytes == 0 {
				t.Errorf("missing measurements: %+v", res)
			}
			entities := strings.HasPrefix(sc.Name, "entity-")
			if sc.Name != "timers" && sc.Name != "idle" && !entities && res.ActivitiesPerSecond <= 0 {
				t.Errorf("no activity rate: %+v", res)
			}
			if entities && (res.EntityOperationsPerSecond <= 0 || res.CPUMsPerEntityOperation <= 0) {
				t.Errorf("no entity operation rate: %+v", res)
			}
			if sc.Name == "idle" && res.MemoryPerInstanceBytes <= 0 {
				t.Errorf("no memory per idle instance: %+v", res)
			}
			if (sc.Name == "hello-sequence" || sc.Name == "latency" || sc.Name == "idle" || sc.Name == "timers") &&
				(res.Latency == nil || res.Latency.P99 < res.Latency.P50) {
				t.Errorf("latency percentiles missing or out of order: %+v", res.Latency)
			}
			if res.Transactions == nil || res.Transactions.Count == 0 || res.Transactions.PerOrchestration+res.Transactions.PerStep == 0 {
				t.Errorf("no write transactions counted: %+v", res.Transactions)
			}
			var out bytes.Buffer
			if err := WriteText(&out, []Result{res}, cfg); err != nil || !strings.Contains(out.String(), sc.Name) {
				t.Errorf("report %q, %v", out.String(), err)
			}
		})
	}
}

func TestWrongOutputFailsTheRun(t *testing.T) {
	for _, name := range []string{"hello-sequence", "fan-out", "long-sequence", "latency", "entity-signals", "entity-critical-sections"} {
		_, err := Run(context.Background(), name, Config{N: 3, wrongOutput: true})
		if !errors.Is(err, ErrWrongOutput) || !strings.Contains(err.Error(), "want") {
			t.Errorf("%s with wrong activities: %v, want ErrWrongOutput naming the expected output", name, err)
		}
	}
}

func TestDurationStopsTheRun(t *testing.T) {
	// 1,000 timers of an hour cannot finish within the 300ms bound: the run stops and says so.
	res, err := Run(context.Background(), "timers", Config{N: 1000, TimerDelay: time.Hour, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Completed != 0 {
		t.Fatalf("stopped %v, completed %d; want stopped with nothing completed", res.Stopped, res.Completed)
	}
}

// TestReportOfHosts: a multi-host result names the activities each host ran.
func TestReportOfHosts(t *testing.T) {
	var out bytes.Buffer
	res := Result{Scenario: "hello-sequence", N: 10, Completed: 10, Hosts: 3, ActivitiesPerHost: []int64{12, 9, 9}, MachineCPUBusy: 0.5}
	if err := WriteText(&out, []Result{res}, Config{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"activities run per host 12 / 9 / 9", "50%", "machine busy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestWorkerThatDoesNotStart: a worker host that exits without saying "ready", or cannot be
// started at all, fails the run with an error that says which and what the worker printed.
func TestWorkerThatDoesNotStart(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, c := range []struct {
		command []string
		want    string
	}{
		{[]string{"sh", "-c", "echo no such hub >&2; exit 3", "worker"}, "worker host 2 did not start: no such hub"},
		{[]string{"/nonexistent/reprise"}, "start worker host 2 (/nonexistent/reprise)"},
	} {
		_, err := Run(context.Background(), "latency", Config{N: 1, Hosts: 2, Store: dsn, WorkerCommand: c.command})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("worker %q: %v, want an error containing %q", c.command, err, c.want)
		}
	}
}

func TestBadArguments(t *testing.T) {
	if _, err := Run(context.Background(), "nope", Config{}); err == nil || !strings.Contains(err.Error(), "hello-sequence") {
		t.Errorf("unknown scenario: %v, want an error listing the scenarios", err)
	}
	if _, err := Run(context.Background(), "latency", Config{Store: "mysql://x"}); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("mysql store: %v, want a clear error", err)
	}
	if _, err := Run(context.Background(), "latency", Config{Hosts: 3, Store: "bench.db"}); err == nil || !strings.Contains(err.Error(), "3 hosts need a shared postgres:// store") {
		t.Errorf("3 hosts on SQLite: %v, want a clear error", err)
	}
	if _, err := Run(context.Background(), "latency", Config{Hosts: 2, Store: "postgres://127.0.0.1:1/none"}); err == nil || !strings.Contains(err.Error(), "WorkerCommand") {
		t.Errorf("2 hosts without a worker command: %v, want an error naming WorkerCommand", err)
	}
	if _, err := Worker(context.Background(), WorkerConfig{Store: "bench.db", Hub: "h"}, func() { t.Error("ready on a SQLite store") }); err == nil {
		t.Error("Worker on a SQLite store: no error")
	}
}

// TestStoreFlagWinsOverTheEnvironment: a run measures the store it was given, whatever
// REPRISE_STORE says (decision 0010).
func TestStoreFlagWinsOverTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	given, other := filepath.Join(dir, "given.db"), filepath.Join(dir, "other.db")
	t.Setenv("REPRISE_STORE", other)
	if _, err := Run(context.Background(), "latency", Config{N: 2, Store: given}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(given); err != nil {
		t.Errorf("the run did not use its --store: %v", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Error("the run opened REPRISE_STORE instead of its --store")
	}
}
