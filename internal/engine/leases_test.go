package engine_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/internal/storefault"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
)

// runChains starts n chain instances on st, waits for all of them and checks that each
// completed with its input plus three, with every activity result applied once.
func runChains(t *testing.T, st store.Store, prefix string, n int, within time.Duration) {
	t.Helper()
	startChains(t, st, prefix, n)
	checkChains(t, st, prefix, n, within)
}

func startChains(t *testing.T, st store.Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		start(t, st, "chain", fmt.Sprintf("%s%03d", prefix, i), i)
	}
}

func checkChains(t *testing.T, st store.Store, prefix string, n int, within time.Duration) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		inst := waitDone(t, st, id, within)
		if inst.Status != store.StatusCompleted || string(inst.Output) != strconv.Itoa(i+3) {
			t.Fatalf("%s is %s with output %s, want Completed with %d", id, inst.Status, inst.Output, i+3)
		}
		if tasks := checkOnce(t, st, id); len(tasks) != 3 {
			t.Fatalf("%s scheduled %d tasks, want 3", id, len(tasks))
		}
	}
}

// TestFailedCommitsAreRetried: commits and activity completions that fail, before being applied
// (an I/O error) or after (a lost reply), are retried: every instance completes, no activity
// runs twice, no result is applied twice.
func TestFailedCommitsAreRetried(t *testing.T) {
	fs := storefault.Wrap(openSQLite(t))
	every := func(n int) func(storefault.Call) bool {
		return func(c storefault.Call) bool { return c.N%n == 0 }
	}
	fs.Fail(storefault.Fault{Method: "CommitEpisode", Pick: every(7)})
	fs.Fail(storefault.Fault{Method: "CommitEpisode", Pick: every(11), After: true})
	fs.Fail(storefault.Fault{Method: "CompleteActivity", Pick: every(5)})
	fs.Fail(storefault.Fault{Method: "CompleteActivity", Pick: every(9), After: true})
	var r runs
	newEngine(t, engine.Options{Store: fs, Registry: chainRegistry(&r), LeaseDuration: 10 * time.Second})

	const n = 50
	runChains(t, fs, "i", n, 30*time.Second)
	if fs.Failed("CommitEpisode") == 0 || fs.Failed("CompleteActivity") == 0 {
		t.Fatalf("no fault was injected (%d commits, %d completions)", fs.Failed("CommitEpisode"), fs.Failed("CompleteActivity"))
	}
	for i := range n {
		id := fmt.Sprintf("i%03d", i)
		for task := range int32(3) {
			if got := r.of(id, task); got != 1 {
				t.Fatalf("activity %d of %s ran %d times, want once (its completion was retried)", task, id, got)
			}
		}
	}
}

// TestGivenUpCommitExpires: an episode whose commit keeps failing is given up, and only its
// lease stops being renewed: it expires while the engine lives on and renews its other work,
// and the episode runs again from the stored history. Likewise an activity whose result cannot
// be recorded runs again (at least once). No restart is needed.
func TestGivenUpCommitExpires(t *testing.T) {
	fs := storefault.Wrap(openSQLite(t))
	logs := &logRecorder{}
	var r runs
	const lease = time.Second
	newEngine(t, engine.Options{Store: fs, Registry: chainRegistry(&r), LeaseDuration: lease, Logger: slog.New(logs)})

	// The first episode of "x" fails to commit until the engine gives it up; then the first
	// activity of "y" cannot record its result until the engine gives it up.
	for _, c := range []struct {
		method, id, givenUp, output string
		input                       int
	}{
		{"CommitEpisode", "x", "orchestration episode not committed, given up", "3", 0},
		{"CompleteActivity", "y", "activity result not recorded, given up", "13", 10},
	} {
		fs.Fail(storefault.Fault{Method: c.method, Pick: func(call storefault.Call) bool { return call.InstanceID == c.id }})
		if c.method == "CompleteActivity" {
			// And its merged completion, which it tries first (merged.go).
			fs.Fail(storefault.Fault{Method: "CommitEpisode", Pick: func(call storefault.Call) bool { return call.InstanceID == c.id && call.Merged }})
		}
		start(t, fs, "chain", c.id, c.input)
		logs.wait(t, 10*time.Second, c.givenUp, "instanceId="+c.id)
		fs.Clear()
		if inst := waitDone(t, fs, c.id, 20*time.Second); inst.Status != store.StatusCompleted || string(inst.Output) != c.output {
			t.Fatalf("%s is %s with output %s, want Completed with %s", c.id, inst.Status, inst.Output, c.output)
		}
		checkOnce(t, fs, c.id)
	}
	if got := r.of("y", 0); got < 2 {
		t.Fatalf("the activity whose result was lost ran %d times, want it run again", got)
	}
}

// TestPostgresConnectionsKilled: the store's connections are killed (pg_terminate_backend, on
// this test's own database only) while instances run; every instance completes without a
// restart and nothing is applied twice.
func TestPostgresConnectionsKilled(t *testing.T) {
	dsn := pgtest.DSN(t)
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var r runs
	newEngine(t, engine.Options{Store: st, Registry: chainRegistry(&r), LeaseDuration: 3 * time.Second})

	const n = 100
	startChains(t, st, "k", n)
	killed := make(chan int, 1)
	go func() {
		total := 0
		defer func() { killed <- total }()
		for range 8 {
			time.Sleep(30 * time.Millisecond) // pacing of the faults, not synchronisation
			k, err := pgtest.KillConnections(t.Context(), dsn)
			if err != nil {
				t.Errorf("killing connections: %v", err)
				return
			}
			total += k
		}
	}()
	if k := <-killed; k == 0 {
		t.Fatal("no connection was killed")
	}
	checkChains(t, st, "k", n, 60*time.Second)
}
