package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// The crash tests of merged completions (internal/engine/merged.go): a child process runs the
// hello sequence on a SQLite file and kills itself (SIGKILL) at one point of a merged step;
// a second child, without the kill, finishes the work on the same file; then the parent checks
// every instance whose start was acknowledged.
//
// The points, in the order of one sequential step, and what each leaves in the file:
//
//	activity-returns      the activity has its result (1), nothing sent: the task is leased to the
//	                      dead engine; it runs again once the lease expires.
//	commit-sent           the merged CommitEpisode leaves the engine (2) and never reaches the
//	                      store: as above.
//	commit-applied        the store applied it (3), the reply never reaches the engine (4): the
//	                      result is in the history, the next task leased to the dead engine.
//	next-activity-starts  the reply reached the engine (4) and the task it leased starts (5).
//
// And the fallback (CompleteActivity) of a merged commit that failed:
//
//	fallback-sent         the merged commit was refused before applying; the process dies as its
//	                      CompleteActivity leaves for the store.
//	fallback-applied      the same, dying once the CompleteActivity was applied.
//	lost-reply-fallback   the merged commit was applied but its reply lost; the process dies once
//	                      the fallback CompleteActivity was answered (refused: ErrLeaseLost).
var crashMergedPoints = []string{
	"activity-returns", "commit-sent", "commit-applied", "next-activity-starts",
	"fallback-sent", "fallback-applied", "lost-reply-fallback",
}

const (
	crashMergedInstances = 40
	crashMergedAt        = 30 // the kill comes at the first chance from this merged commit on
	crashMergedStarters  = 8  // clients starting instances at once
)

// errCrashInjected is the failure the kill hook injects into the merged commit of the fallback
// points.
var errCrashInjected = errors.New("crash test: merged commit failed on purpose")

// mergedKiller is the child's store: it counts merged commits and, at its point, kills its own
// process. Its point is armed from the at-th merged commit on and fires once (the process ends).
type mergedKiller struct {
	store.Store
	point string // "" for none
	at    int64

	sent, applied atomic.Int64 // merged commits sent to the store, and applied (nil error)
	armed         atomic.Bool  // the commit the point follows was chosen

	mu       sync.Mutex
	victim   string // activity points: the instance whose next activity (leased by a merged commit) dies
	fallback int64  // fallback points: the task whose CompleteActivity dies
}

// kill says where the process dies on its standard output (the parent's proof that it died
// there, after merged commits) and kills it.
func (k *mergedKiller) kill(detail string) {
	fmt.Printf("kill %s after %d merged commits sent, %d applied%s\n", k.point, k.sent.Load(), k.applied.Load(), detail)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way: never return into the engine
}

// choose reports, once, whether this merged commit (the n-th) is the one the point follows.
func (k *mergedKiller) choose(n int64) bool {
	return n >= k.at && k.armed.CompareAndSwap(false, true)
}

func (k *mergedKiller) CommitEpisode(ctx context.Context, e store.Episode) error {
	if e.Completes == nil {
		return k.Store.CommitEpisode(ctx, e)
	}
	n := k.sent.Add(1)
	switch k.point {
	case "commit-sent":
		if k.choose(n) {
			k.kill("")
		}
	case "fallback-sent", "fallback-applied":
		if k.choose(n) {
			k.mu.Lock()
			k.fallback = e.Completes.TaskID
			k.mu.Unlock()
			return errCrashInjected // refused: nothing applied
		}
	}
	err := k.Store.CommitEpisode(ctx, e)
	if err != nil {
		return err
	}
	k.applied.Add(1)
	switch k.point {
	case "commit-applied":
		if k.choose(n) {
			k.kill("")
		}
	case "lost-reply-fallback":
		if k.choose(n) {
			k.mu.Lock()
			k.fallback = e.Completes.TaskID
			k.mu.Unlock()
			return errCrashInjected // applied, and the engine told otherwise
		}
	case "activity-returns", "next-activity-starts":
		// The next activity of this instance in this process is the one this commit leased.
		if e.LeaseTasks != nil && len(e.LeaseTasks.Leased) > 0 && k.choose(n) {
			k.mu.Lock()
			k.victim = e.Instance.ID
			k.mu.Unlock()
		}
	}
	return nil
}

func (k *mergedKiller) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	k.mu.Lock()
	dies := k.fallback != 0 && k.fallback == taskID
	k.mu.Unlock()
	if dies && k.point == "fallback-sent" {
		k.kill("")
	}
	err := k.Store.CompleteActivity(ctx, taskID, lease, result)
	if dies {
		k.kill(fmt.Sprintf("; fallback completion: %v", err))
	}
	return err
}

// activityDies reports whether the activity of instance id is the victim of the point.
func (k *mergedKiller) activityDies(point, id string) bool {
	if k.point != point {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.victim != "" && k.victim == id
}

// TestCrashMergedChild is the engine process of TestCrashMerged; it does nothing on its own.
func TestCrashMergedChild(t *testing.T) {
	dbPath := os.Getenv("REPRISE_CRASH_MERGED_DB")
	if dbPath == "" {
		t.Skip("runs as a child process of TestCrashMerged")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k := &mergedKiller{Store: st, point: os.Getenv("REPRISE_CRASH_MERGED_KILL"), at: crashMergedAt}
	hello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		info, _ := reprise.ActivityInfoFrom(ctx)
		if k.activityDies("next-activity-starts", info.InstanceID) {
			k.kill(" (activity of " + info.InstanceID + " started)")
		}
		out := "Hello " + city + "!"
		if k.activityDies("activity-returns", info.InstanceID) {
			k.kill(" (activity of " + info.InstanceID + " returns)")
		}
		return out, nil
	})
	app := reprise.NewApp(
		reprise.WithStore(k),
		reprise.WithLeaseDuration(time.Second),
		reprise.WithMaxConcurrentActivities(8),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	)
	app.Register(hello, helloSequence)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := app.Client()
	var ids []string
	if os.Getenv("REPRISE_CRASH_MERGED_START") == "1" {
		// Started by a few clients at once, so that many instances are mid-step at the kill.
		var wg sync.WaitGroup
		errs := make(chan error, crashMergedStarters)
		for s := range crashMergedStarters {
			wg.Go(func() {
				for i := s; i < crashMergedInstances; i += crashMergedStarters {
					id, err := helloSequence.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(fmt.Sprintf("merged-%03d", i)))
					if err != nil {
						errs <- err
						return
					}
					fmt.Println("started", id) // acknowledged
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Every instance that exists: those whose start was acknowledged, and any whose start was
	// on its way when the first child died.
	for i := range crashMergedInstances {
		id := fmt.Sprintf("merged-%03d", i)
		if _, err := c.GetInstance(ctx, id); err == nil {
			ids = append(ids, id)
		} else if !errors.Is(err, reprise.ErrInstanceNotFound) {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("all %d completed, %d merged commits sent, %d applied\n", len(ids), k.sent.Load(), k.applied.Load())
}

// TestCrashMerged: a process killed at any point of a merged step (see crashMergedPoints)
// loses nothing and applies nothing twice: after a restart every acknowledged instance
// completes with the right output and a history with every event once.
func TestCrashMerged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, point := range crashMergedPoints {
		t.Run(point, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "merged.db")

			// First run: start the instances; the process kills itself at the point.
			first, lines := startChild(t, "TestCrashMergedChild",
				"REPRISE_CRASH_MERGED_DB="+dbPath, "REPRISE_CRASH_MERGED_START=1", "REPRISE_CRASH_MERGED_KILL="+point)
			acked, kill := map[string]bool{}, ""
			for lines.Scan() {
				switch line := lines.Text(); {
				case strings.HasPrefix(line, "started "):
					acked[strings.TrimPrefix(line, "started ")] = true
				case strings.HasPrefix(line, "kill "):
					kill = line
				}
			}
			err := first.Wait()
			ws, _ := first.ProcessState.Sys().(syscall.WaitStatus)
			if kill == "" || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the first child did not kill itself at %s (exit: %v; kill line %q): the point was never reached", point, err, kill)
			}
			t.Logf("%s; %d starts acknowledged", kill, len(acked))
			// The kill is reached only through a merged commit, the at-th or a later one.
			var sent, applied int
			if _, err := fmt.Sscanf(kill, "kill "+point+" after %d merged commits sent, %d applied", &sent, &applied); err != nil {
				t.Fatalf("kill line %q: %v", kill, err)
			}
			if sent < crashMergedAt || applied == 0 {
				t.Fatalf("killed after %d merged commits sent and %d applied, want at least %d sent and some applied", sent, applied, crashMergedAt)
			}
			if point == "lost-reply-fallback" && !strings.Contains(kill, store.ErrLeaseLost.Error()) {
				t.Fatalf("the fallback of a merged commit that was applied was not refused for its lost lease: %q", kill)
			}
			if point == "fallback-applied" && !strings.Contains(kill, "fallback completion: <nil>") {
				t.Fatalf("the fallback of a refused merged commit was not applied: %q", kill)
			}
			if len(acked) == 0 {
				t.Fatal("no start was acknowledged before the kill: nothing to check")
			}

			// Second run: the restarted engine, without the kill, finishes everything.
			second, lines := startChild(t, "TestCrashMergedChild", "REPRISE_CRASH_MERGED_DB="+dbPath)
			done := ""
			for lines.Scan() {
				if line := lines.Text(); strings.HasPrefix(line, "all ") {
					done = line
				}
			}
			if err := second.Wait(); err != nil || done == "" {
				t.Fatalf("the restarted child failed: %v (last line %q)", err, done)
			}
			t.Logf("restart: %s", done)

			// Check every instance from the file, in this process.
			app, ctx := checkerApp(t, dbPath)
			checked := 0
			for i := range crashMergedInstances {
				id := fmt.Sprintf("merged-%03d", i)
				inst, err := app.Client().GetInstance(ctx, id, reprise.WithHistory())
				if errors.Is(err, reprise.ErrInstanceNotFound) && !acked[id] {
					continue // never started: the process died first
				}
				if err != nil {
					t.Fatalf("%s (start acknowledged: %v): %v", id, acked[id], err)
				}
				if got := string(inst.Output); inst.Status != reprise.StatusCompleted || got != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
					t.Fatalf("%s: status %s, output %s", id, inst.Status, got)
				}
				if problem := helloHistoryProblem(inst.History); problem != "" {
					t.Fatalf("%s: %s", id, problem)
				}
				checked++
			}
			if checked < len(acked) {
				t.Fatalf("%d instances checked, want at least the %d acknowledged", checked, len(acked))
			}
		})
	}
}
