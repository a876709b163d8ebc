package reprise_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

const crashInstances = 200

// crashApp is the App the child processes run: the hello sequence with slow activities, so
// that the parent can kill it mid-run, and short leases, so that the restarted child takes the
// dead one's work over quickly.
func crashApp(dbPath string) *reprise.App {
	slowHello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		select {
		case <-time.After(3 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "Hello " + city + "!", nil
	})
	app := reprise.NewApp(
		reprise.WithSQLiteFile(dbPath),
		reprise.WithLeaseDuration(time.Second),
		reprise.WithMaxConcurrentActivities(8),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	)
	app.Register(slowHello, helloSequence)
	return app
}

// TestCrashRecoveryChild is the engine process of TestCrashRecovery; it does nothing on its own.
func TestCrashRecoveryChild(t *testing.T) {
	dbPath := os.Getenv("REPRISE_CRASH_DB")
	if dbPath == "" {
		t.Skip("runs as a child process of TestCrashRecovery")
	}
	ctx := context.Background()
	app := crashApp(dbPath)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := app.Client()
	var ids []string
	if os.Getenv("REPRISE_CRASH_START") == "1" {
		for i := range crashInstances {
			id, err := helloSequence.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(fmt.Sprintf("crash-%03d", i)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	} else {
		for i := range crashInstances {
			ids = append(ids, fmt.Sprintf("crash-%03d", i))
		}
	}
	fmt.Println("started")
	for _, id := range ids {
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
		fmt.Println("completed", id)
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("all completed")
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dbPath := filepath.Join(t.TempDir(), "crash.db")
	child := func(start bool) (*exec.Cmd, *bufio.Scanner) {
		env := []string{"REPRISE_CRASH_DB=" + dbPath}
		if start {
			env = append(env, "REPRISE_CRASH_START=1")
		}
		return startChild(t, "TestCrashRecoveryChild", env...)
	}

	// First run: start the instances, and kill the process once some have completed.
	first, lines := child(true)
	completed := 0
	for completed < 20 && lines.Scan() {
		if strings.HasPrefix(lines.Text(), "completed ") {
			completed++
		}
	}
	if completed < 20 {
		first.Process.Kill()
		first.Wait()
		t.Fatalf("the first child stopped after %d completions", completed)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	// Second run: the restarted engine finishes everything.
	second, lines := child(false)
	done := false
	for lines.Scan() {
		if lines.Text() == "all completed" {
			done = true
		}
	}
	if err := second.Wait(); err != nil || !done {
		t.Fatalf("the restarted child failed: %v (all completed: %v)", err, done)
	}

	// Check every instance from the file, in this process.
	app, ctx := checkerApp(t, dbPath)
	unfinishedAtKill := 0
	for i := range crashInstances {
		id := fmt.Sprintf("crash-%03d", i)
		inst, err := app.Client().GetInstance(ctx, id, reprise.WithHistory())
		if err != nil {
			t.Fatal(err)
		}
		if got := string(inst.Output); inst.Status != reprise.StatusCompleted || got != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
			t.Fatalf("%s: status %s, output %s", id, inst.Status, got)
		}
		if problem := helloHistoryProblem(inst.History); problem != "" {
			t.Fatalf("%s: %s", id, problem)
		}
		if inst.LastUpdatedAt.Sub(inst.CreatedAt) > time.Second {
			unfinishedAtKill++
		}
	}
	t.Logf("%d completed before the kill; %d instances took over a second (finished after the restart)", completed, unfinishedAtKill)
}

// checkerApp starts an App on the crash tests' file, to read what the children left; it is shut
// down with the test.
func checkerApp(t *testing.T, dbPath string) (*reprise.App, context.Context) {
	t.Helper()
	app := reprise.NewApp(reprise.WithSQLiteFile(dbPath), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(helloSequence, sayHello)
	ctx := testCtx(t)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Shutdown(context.WithoutCancel(ctx)) })
	return app, ctx
}

// helloHistoryProblem says what is wrong with the history of a finished hello sequence, or "".
// An episode applied twice would leave duplicate events: two starts, a task scheduled or
// completed twice, or more than one completion.
func helloHistoryProblem(history []reprise.HistoryEvent) string {
	counts := map[string]int{}
	seen := map[string]bool{}
	for _, e := range history {
		counts[e.Type]++
		key := fmt.Sprintf("%s/%d/%d", e.Type, e.EventID, e.TaskID)
		if e.Type != "OrchestratorStarted" && seen[key] {
			return fmt.Sprintf("event %s recorded twice: an episode was applied twice", key)
		}
		seen[key] = true
	}
	if counts["ExecutionStarted"] != 1 || counts["TaskScheduled"] != 3 || counts["TaskCompleted"] != 3 ||
		counts["ExecutionCompleted"] != 1 || counts["OrchestratorStarted"] != 4 {
		return fmt.Sprintf("history counts %v, want 1 start, 3 scheduled, 3 completed, 4 episodes, 1 completion", counts)
	}
	return ""
}

// startChild runs the test binary again as a child process that runs only the named test, with
// the environment variables added, and returns it with a scanner of its standard output.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}
