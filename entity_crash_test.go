package reprise_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
)

const (
	crashSignals   = 1500 // signals sent by the first child, over crashEntities entities
	crashEntities  = 5
	crashTransfers = 30 // bank transfers started by the first child
)

// tally is the entity of the entity crash test: "mark" records how many times each signal
// number was applied, so that a signal applied twice, or one acknowledged and lost, shows.
var tally = reprise.NewEntity("tally", func(ctx *reprise.EntityContext[map[string]int]) (any, error) {
	if ctx.Operation() != "mark" {
		return nil, fmt.Errorf("tally has no operation %q", ctx.Operation())
	}
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	s := ctx.State()
	if s == nil {
		s = map[string]int{}
	}
	s[strconv.Itoa(n)]++
	ctx.SetState(s)
	return nil, nil
})

// entityCrashApp is the App of the entity crash test on a store: a SQLite file, or a postgres://
// DSN.
func entityCrashApp(storeAt string) *reprise.App {
	storeOpt := reprise.WithSQLiteFile(storeAt)
	if strings.HasPrefix(storeAt, "postgres://") {
		storeOpt = reprise.WithPostgres(storeAt)
	}
	app := reprise.NewApp(
		storeOpt,
		reprise.WithLeaseDuration(time.Second),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	)
	app.Register(tally, account, transfer)
	return app
}

// TestEntityCrashRecoveryChild is the process of TestEntityCrashRecovery; it does nothing on its
// own. With REPRISE_CRASH_START it funds two accounts, starts the transfers and sends the
// signals, printing "acked N" for each signal the store acknowledged; then (and in the second
// run) it waits for the transfers.
func TestEntityCrashRecoveryChild(t *testing.T) {
	dbPath := os.Getenv("REPRISE_ENTITY_CRASH_DB")
	if dbPath == "" {
		t.Skip("runs as a child process of TestEntityCrashRecovery")
	}
	ctx := context.Background()
	app := entityCrashApp(dbPath)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := app.Client()
	if os.Getenv("REPRISE_CRASH_START") == "1" {
		for _, k := range []string{"alice", "bob"} {
			if err := c.SignalEntity(ctx, account.ID(k), "deposit", 100); err != nil {
				t.Fatal(err)
			}
		}
		for i := range crashTransfers {
			in := transferInput{From: "alice", To: "bob", Amount: 7}
			if i%2 == 1 {
				in = transferInput{From: "bob", To: "alice", Amount: 11}
			}
			if _, err := transfer.Start(ctx, c, in, reprise.WithInstanceID(fmt.Sprintf("transfer-%02d", i))); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Println("started")
		for i := range crashSignals {
			if err := c.SignalEntity(ctx, tally.ID(strconv.Itoa(i%crashEntities)), "mark", i); err != nil {
				t.Fatal(err)
			}
			fmt.Println("acked", i)
		}
	}
	for i := range crashTransfers {
		if _, err := c.WaitForCompletion(ctx, fmt.Sprintf("transfer-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("all completed")
}

// TestEntityCrashRecovery kills a host with SIGKILL while it sends signals to entities and runs
// critical sections over two accounts, restarts it, and checks that every acknowledged signal
// was applied exactly once, none twice, every transfer completed, the total of the accounts is
// unchanged and no lock is left behind: on SQLite and on PostgreSQL.
func TestEntityCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Run("sqlite", func(t *testing.T) { entityCrashRecovery(t, filepath.Join(t.TempDir(), "crash.db")) })
	t.Run("postgres", func(t *testing.T) { entityCrashRecovery(t, pgtest.DSN(t)) })
}

func entityCrashRecovery(t *testing.T, dbPath string) {
	first, lines := startChild(t, "TestEntityCrashRecoveryChild", "REPRISE_ENTITY_CRASH_DB="+dbPath, "REPRISE_CRASH_START=1")
	acked := -1
	for acked < crashSignals/2 && lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if acked < crashSignals/2 {
		t.Fatalf("the first child stopped after %d acknowledged signals", acked+1)
	}

	second, lines := startChild(t, "TestEntityCrashRecoveryChild", "REPRISE_ENTITY_CRASH_DB="+dbPath)
	done := false
	for lines.Scan() {
		if lines.Text() == "all completed" {
			done = true
		}
	}
	if err := second.Wait(); err != nil || !done {
		t.Fatalf("the restarted child failed: %v (all completed: %v)", err, done)
	}

	// Check from the file, in this process, with the entities running to drain what is left.
	app := entityCrashApp(dbPath)
	ctx := testCtx(t)
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Shutdown(ctx)
	c := app.Client()
	applied := map[int]int{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		clear(applied)
		for k := range crashEntities {
			m, err := c.GetEntity(ctx, tally.ID(strconv.Itoa(k)))
			if err != nil {
				t.Fatal(err)
			}
			var s map[string]int
			if err := m.GetState(&s); err != nil {
				t.Fatal(err)
			}
			for n, times := range s {
				i, _ := strconv.Atoi(n)
				applied[i] += times
			}
		}
		missing := 0
		for i := 0; i <= acked; i++ {
			if applied[i] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged signals were never applied", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, times := range applied {
		if times > 1 {
			t.Fatalf("signal %d applied %d times", i, times)
		}
		if i > acked+64 {
			t.Fatalf("signal %d applied, but the child had not got so far", i)
		}
	}
	a := waitEntity(t, c, account.ID("alice"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" })
	b := waitEntity(t, c, account.ID("bob"), func(m *reprise.EntityMetadata) bool { return m.LockedBy == "" })
	if total := entityCount(a) + entityCount(b); total != 200 {
		t.Fatalf("alice %d + bob %d = %d after the crash, want 200", entityCount(a), entityCount(b), total)
	}
	t.Logf("killed after %d acknowledged signals; %d applied in all", acked+1, len(applied))
}
