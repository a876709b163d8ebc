package reprise_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// millionFinished is how many old finished instances TestRetentionMillion purges on a store: a
// million, but on SQLite under the race detector, which slows modernc's SQLite (Go code, so
// instrumented) about fortyfold: there 5 000, and .ci/run runs the test once more without the
// race detector for the million. REPRISE_TEST_RETENTION_INSTANCES sets it for both stores.
func millionFinished(t *testing.T, sqliteStore bool) int {
	if v := os.Getenv("REPRISE_TEST_RETENTION_INSTANCES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("REPRISE_TEST_RETENTION_INSTANCES=%q: want a positive number", v)
		}
		return n
	}
	if sqliteStore && raceDetector {
		t.Logf("SQLite under the race detector: 5 000 instances instead of a million (run without -race for the million)")
		return 5_000
	}
	return 1_000_000
}

// Besides the old finished instances, each store holds instances that retention must keep.
const (
	retentionYoung   = 1000 // Completed an hour ago, under a retention of a day
	retentionRunning = 1000 // Running, "updated" as long ago as the old ones
)

// bulkStore is a store filled by SQL: the options of an App on it, and counts read with SQL.
type bulkStore struct {
	opts []reprise.Option
	// count returns the instances whose ID starts with prefix, and their history chunks.
	count func(t *testing.T, prefix string) (instances, history int)
}

// TestRetentionMillion: an App with retention on, over a store holding a million instances
// that finished ten days ago (all four statuses, each with a history chunk), purges every one of
// them with its history, keeps the young and the running ones, and runs hello sequences to
// completion while it purges. The instances are written with SQL straight into the tables (a
// test-only path), which is what keeps this fast; the test logs how long each part took.
func TestRetentionMillion(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		n := millionFinished(t, true)
		path := filepath.Join(t.TempDir(), "million.db")
		st, err := sqlite.Open(context.Background(), path, sqlite.Options{Hub: "million"}) // the schema
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		began := time.Now()
		now := time.Now()
		old, young := now.Add(-10*24*time.Hour).UnixNano(), now.Add(-time.Hour).UnixNano()
		seq := `WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x + 1 < ?) `
		status := `CASE x % 4 WHEN 0 THEN 1 WHEN 1 THEN 3 WHEN 2 THEN 4 ELSE 5 END`
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{seq + `INSERT INTO instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
				SELECT 'million', printf('old-%07d', x), 'orch', 'e', '', ` + status + `, ?, ? FROM g`, []any{n, old - int64(time.Minute), old}},
			{seq + `INSERT INTO history (hub, instance_id, idx, data) SELECT 'million', printf('old-%07d', x), 0, x'00' FROM g`, []any{n}},
			{seq + `INSERT INTO instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
				SELECT 'million', printf('young-%04d', x), 'orch', 'e', '', 1, ?, ? FROM g`, []any{retentionYoung, young - int64(time.Minute), young}},
			{seq + `INSERT INTO instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
				SELECT 'million', printf('running-%04d', x), 'orch', 'e', '', 0, ?, ? FROM g`, []any{retentionRunning, old - int64(time.Minute), old}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		t.Logf("inserted %d old finished instances with their history on SQLite in %v", n, time.Since(began).Round(time.Millisecond))
		testRetentionMillion(t, n, bulkStore{
			opts: []reprise.Option{reprise.WithSQLiteFile(path), reprise.WithHub("million")},
			count: func(t *testing.T, prefix string) (int, int) {
				var i, h int
				if err := db.QueryRow(`SELECT (SELECT count(*) FROM instances WHERE hub = 'million' AND id >= ?1 AND id < ?1 || '~'),
					(SELECT count(*) FROM history WHERE hub = 'million' AND instance_id >= ?1 AND instance_id < ?1 || '~')`, prefix).Scan(&i, &h); err != nil {
					t.Fatal(err)
				}
				return i, h
			},
		})
	})
	t.Run("postgres", func(t *testing.T) {
		n := millionFinished(t, false)
		dsn := pgtest.DSN(t)
		ctx := context.Background()
		st, err := postgres.Open(ctx, dsn, postgres.Options{Hub: "million"}) // the schema
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		began := time.Now()
		now := time.Now()
		old, young := now.Add(-10*24*time.Hour), now.Add(-time.Hour)
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
			SELECT 'million', 'old-' || lpad(x::text, 7, '0'), 'orch', 'e', '', (ARRAY[1, 3, 4, 5])[1 + x % 4], $2, $3
			FROM generate_series(0, $1 - 1) x`, n, old.Add(-time.Minute), old)
		b.Queue(`INSERT INTO reprise.history (hub, instance_id, idx, data)
			SELECT 'million', 'old-' || lpad(x::text, 7, '0'), 0, '\x00'::bytea FROM generate_series(0, $1 - 1) x`, n)
		b.Queue(`INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
			SELECT 'million', 'young-' || lpad(x::text, 4, '0'), 'orch', 'e', '', 1, $2, $3 FROM generate_series(0, $1 - 1) x`,
			retentionYoung, young.Add(-time.Minute), young)
		b.Queue(`INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
			SELECT 'million', 'running-' || lpad(x::text, 4, '0'), 'orch', 'e', '', 0, $2, $3 FROM generate_series(0, $1 - 1) x`,
			retentionRunning, old.Add(-time.Minute), old)
		b.Queue(`ANALYZE reprise.instances`)
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("inserted %d old finished instances with their history on PostgreSQL in %v", n, time.Since(began).Round(time.Millisecond))
		testRetentionMillion(t, n, bulkStore{
			opts: []reprise.Option{reprise.WithPostgres(dsn), reprise.WithHub("million")},
			count: func(t *testing.T, prefix string) (int, int) {
				var i, h int
				if err := conn.QueryRow(context.Background(), `SELECT
					(SELECT count(*) FROM reprise.instances WHERE hub = 'million' AND id LIKE $1 || '%'),
					(SELECT count(*) FROM reprise.history WHERE hub = 'million' AND instance_id LIKE $1 || '%')`, prefix).Scan(&i, &h); err != nil {
					t.Fatal(err)
				}
				return i, h
			},
		})
	})
}

func testRetentionMillion(t *testing.T, n int, s bulkStore) {
	if i, h := s.count(t, "old-"); i != n || h != n {
		t.Fatalf("test setup: %d old instances, %d history chunks; want %d", i, h, n)
	}
	var purged atomic.Int64
	var batches, finished atomic.Int64
	done := make(chan struct{})
	began := time.Now()
	warned := &warnLog{}
	opts := append(s.opts,
		reprise.WithLogger(slog.New(warned)),
		reprise.WithRetention(reprise.Retention{Default: 24 * time.Hour, BatchSize: 2000, Pause: time.Millisecond, Interval: time.Hour}),
		reprise.WithPurgeHook(func(_ store.Status, k int) {
			batches.Add(1)
			if purged.Add(int64(k)) == int64(n) {
				finished.Store(time.Now().UnixNano())
				close(done)
			}
		}))
	app := startApp(t, []reprise.Definition{sayHello, helloSequence}, opts...)

	// Hello sequences, one after another, for as long as the purge runs: each completes.
	var sequences int
	var slowest time.Duration
	for purging := true; purging; {
		if w := warned.first.Load(); w != nil {
			t.Fatalf("the App warned: %s", *w)
		}
		if time.Since(began) > 5*time.Minute {
			t.Fatalf("retention purged %d of %d old instances in %v", purged.Load(), n, time.Since(began))
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		id, err := helloSequence.Start(ctx, app.Client(), reprise.None{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
			t.Fatalf("hello sequence %s during the purge: %s, %+v", id, inst.Status, inst.Failure)
		}
		sequences++
		slowest = max(slowest, time.Since(start))
		select {
		case <-done:
			purging = false
		default:
		}
	}
	took := time.Unix(0, finished.Load()).Sub(began)
	t.Logf("purged %d instances in %d batches in %v (%.0f/s); %d hello sequences completed meanwhile, the slowest in %v",
		n, batches.Load(), took.Round(time.Millisecond), float64(n)/took.Seconds(), sequences, slowest.Round(time.Millisecond))
	if i, h := s.count(t, "old-"); i != 0 || h != 0 {
		t.Fatalf("after the purge: %d old instances and %d history chunks left, want none", i, h)
	}
	if i, _ := s.count(t, "young-"); i != retentionYoung {
		t.Errorf("%d young instances left, want all %d", i, retentionYoung)
	}
	if i, _ := s.count(t, "running-"); i != retentionRunning {
		t.Errorf("%d running instances left, want all %d", i, retentionRunning)
	}
	if got := purged.Load(); got != int64(n) {
		t.Errorf("the hook counted %d purged, want %d", got, n)
	}
}

// warnLog is a slog.Handler that keeps the first warning or error logged.
type warnLog struct{ first atomic.Pointer[string] }

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	w.first.CompareAndSwap(nil, &msg)
	return nil
}
func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnLog) WithGroup(string) slog.Handler      { return w }
