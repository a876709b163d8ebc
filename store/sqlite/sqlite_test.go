package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	modernc "modernc.org/sqlite"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

func openTemp(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	}, storetest.Options{
		OpenHubs: func(t *testing.T, hubs []string) []store.Store {
			path := filepath.Join(t.TempDir(), "reprise.db")
			var out []store.Store
			for _, h := range hubs {
				out = append(out, openTemp(t, path, Options{Hub: h}))
			}
			return out
		},
	})
}

func TestDefaultHub(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "x.db"), Options{})
	if s.Hub() != "default" {
		t.Fatalf("Hub() = %q, want default", s.Hub())
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	inst := store.Instance{ID: "keep", Name: "o", Status: store.StatusPending, Input: []byte(`1`)}
	if err := s.CreateInstance(ctx, inst, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	work, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 1, 1e9)
	if err != nil || len(work) != 1 {
		t.Fatalf("claim: %v, %d", err, len(work))
	}
	e := store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, History: [][]byte{[]byte("h")}}
	e.Instance.Status = store.StatusRunning
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2 := openTemp(t, path, Options{})
	got, err := s2.GetInstance(ctx, "keep")
	if err != nil || got.Status != store.StatusRunning || got.HistoryLen != 1 || string(got.Input) != "1" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	// The start message was not consumed, so it is still there.
	work, err = s2.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 1, 1e9)
	if err != nil || len(work) != 1 || string(work[0].Messages[0].Data) != "start" {
		t.Fatalf("claim after reopen: %+v, %v", work, err)
	}
	// Lease tokens must not repeat across a reopen, or a pre-restart lease could fence wrongly.
	if work[0].Lease.Token <= e.Lease.Token {
		t.Fatalf("token after reopen %d is not above the earlier %d", work[0].Lease.Token, e.Lease.Token)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reprise.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.do(ctx, func(w *writer, eff *effects) error {
		_, err := w.conn.ExecContext(w.ctx, `UPDATE schema_version SET version = version + 1`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
}

func pragma(t *testing.T, s *Store, name string) string {
	t.Helper()
	var v string
	err := s.do(context.Background(), func(w *writer, eff *effects) error {
		return w.conn.QueryRowContext(w.ctx, "PRAGMA "+name).Scan(&v)
	})
	if err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestDurabilityPragmas(t *testing.T) {
	dir := t.TempDir()
	full := openTemp(t, filepath.Join(dir, "full.db"), Options{})
	if got := pragma(t, full, "synchronous"); got != "2" {
		t.Fatalf("default synchronous = %s, want 2 (FULL)", got)
	}
	if got := pragma(t, full, "journal_mode"); got != "wal" {
		t.Fatalf("journal_mode = %s, want wal", got)
	}
	if got := pragma(t, full, "busy_timeout"); got != "10000" {
		t.Fatalf("busy_timeout = %s, want 10000", got)
	}
	relaxed := openTemp(t, filepath.Join(dir, "relaxed.db"), Options{Durability: DurabilityRelaxed})
	if got := pragma(t, relaxed, "synchronous"); got != "1" {
		t.Fatalf("relaxed synchronous = %s, want 1 (NORMAL)", got)
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "bad.db"), Options{Durability: 7}); err == nil {
		t.Fatal("Open accepted an unknown durability")
	}
}

// TestLeaseOnlyCommitsAreNotSynced: on a durable store, a transaction that writes only leases
// (claims, renewals, releases) commits without syncing the log, and the next one that writes
// anything else syncs again; a relaxed store never syncs at commit.
func TestLeaseOnlyCommitsAreNotSynced(t *testing.T) {
	dir := t.TempDir()
	syncIn := func(s *Store, leasesOnly bool) string {
		t.Helper()
		var v string
		read := func(w *writer, eff *effects) error {
			return w.conn.QueryRowContext(w.ctx, "PRAGMA synchronous").Scan(&v)
		}
		var err error
		if leasesOnly {
			err = s.doLeases(context.Background(), false, read)
		} else {
			err = s.do(context.Background(), read)
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	full := openTemp(t, filepath.Join(dir, "full.db"), Options{})
	for i, c := range []struct {
		leasesOnly bool
		want       string
	}{{false, "2"}, {true, "1"}, {true, "1"}, {false, "2"}, {true, "1"}} {
		if got := syncIn(full, c.leasesOnly); got != c.want {
			t.Fatalf("durable store, transaction %d (leases only: %v): synchronous = %s, want %s", i, c.leasesOnly, got, c.want)
		}
	}
	relaxed := openTemp(t, filepath.Join(dir, "relaxed.db"), Options{Durability: DurabilityRelaxed})
	if a, b := syncIn(relaxed, false), syncIn(relaxed, true); a != "1" || b != "1" {
		t.Fatalf("relaxed store: synchronous = %s and %s, want 1 (NORMAL) for both", a, b)
	}

	// The store works as before across the switches: a claim, then a commit that is synced.
	ctx := context.Background()
	if err := full.CreateInstance(ctx, store.Instance{ID: "i", Name: "o", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	work, err := full.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute)
	if err != nil || len(work) != 1 {
		t.Fatalf("claim: %d, %v", len(work), err)
	}
	if err := full.CommitEpisode(ctx, store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, Consumed: []int64{work[0].Messages[0].ID}}); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "", Options{}); err == nil {
		t.Fatal("Open accepted an empty path")
	}
	s := openTemp(t, filepath.Join(t.TempDir(), "odd ?#% name.db"), Options{})
	if err := s.CreateInstance(ctx, store.Instance{}, store.Message{}, store.ReuseNever); err == nil {
		t.Fatal("CreateInstance accepted an empty ID")
	}
	if err := s.CreateInstance(ctx, store.Instance{ID: "x"}, store.Message{}, store.ReusePolicy(9)); err == nil {
		t.Fatal("CreateInstance accepted an unknown policy")
	}
	if _, err := s.ClaimOrchestrations(ctx, "", store.Names{"o"}, 1, 1); err == nil {
		t.Fatal("claim accepted an empty owner")
	}
	if _, err := s.ClaimActivities(ctx, "n", store.Names{"a", "act", "t"}, 0, 1); err == nil {
		t.Fatal("claim accepted max 0")
	}
	if err := s.CommitEpisode(ctx, store.Episode{}); err == nil {
		t.Fatal("CommitEpisode accepted an empty episode")
	}
}

// TestClaimsNotReprepared runs the hot path twice, each claim followed by an empty one, with claim
// limits that change on every call, as the engine's free slots do, and checks that the second run
// compiles no SQL: a statement SQLite re-prepares on a new binding costs a full parse and plan on
// every execution. SQLite calls the authorizer only while it compiles a statement, so the count of
// its calls is the count of (re-)preparations.
func TestClaimsNotReprepared(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	var compiled atomic.Int64
	err := s.do(ctx, func(w *writer, eff *effects) error {
		return w.conn.Raw(func(dc any) error {
			r, ok := dc.(modernc.AuthorizerRegisterer)
			if !ok {
				return fmt.Errorf("driver connection %T has no authorizer", dc)
			}
			return r.RegisterAuthorizer(func(action modernc.AuthorizerActionCode, _, _, _, _ string) modernc.AuthorizerReturnCode {
				// The writer switches synchronous between lease-only and other transactions with
				// a PRAGMA, which SQLite applies at compile time: it must be compiled each time.
				if action != modernc.AuthPragma {
					compiled.Add(1)
				}
				return modernc.AuthorizerOK
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	limit := 1000
	run := func(id string) {
		t.Helper()
		if err := s.CreateInstance(ctx, store.Instance{ID: id, Name: "o", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
			t.Fatal(err)
		}
		for step := range 3 {
			limit--
			work, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, limit, time.Minute)
			if err != nil || len(work) != 1 {
				t.Fatalf("claim: %d, %v", len(work), err)
			}
			if none, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, limit-1, time.Minute); err != nil || len(none) != 0 {
				t.Fatalf("second claim: %d, %v", len(none), err)
			}
			e := store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, History: [][]byte{[]byte("h")}}
			for _, m := range work[0].Messages {
				e.Consumed = append(e.Consumed, m.ID)
			}
			if step < 2 {
				e.Tasks = []store.Task{{Name: "a", Data: []byte("in")}}
			}
			if err := s.CommitEpisode(ctx, e); err != nil {
				t.Fatal(err)
			}
			if step == 2 {
				return
			}
			acts, err := s.ClaimActivities(ctx, "n", store.Names{"a", "act", "t"}, limit, time.Minute)
			if err != nil || len(acts) != 1 {
				t.Fatalf("claim activities: %d, %v", len(acts), err)
			}
			if none, err := s.ClaimActivities(ctx, "n", store.Names{"a", "act", "t"}, limit-1, time.Minute); err != nil || len(none) != 0 {
				t.Fatalf("second claim of activities: %d, %v", len(none), err)
			}
			if err := s.CompleteActivity(ctx, acts[0].Task.ID, acts[0].Lease, store.Message{Data: []byte("out")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("warm-up") // installing the authorizer expired every statement: they compile once here
	compiled.Store(0)
	run("measured")
	if n := compiled.Load(); n != 0 {
		t.Fatalf("the write connection compiled SQL %d times on a warm hot path, want 0 (a statement is re-prepared per execution)", n)
	}
}

// TestClaimFindsMessagesOfAnyID checks that a claim hands out the messages of every instance it
// claims, whatever bytes the ID holds. An ID that is not UTF-8 used to be claimed without its
// messages (the claim looked them up through JSON, which turns invalid bytes into U+FFFD), so the
// instance stayed claimable and the host spun on it for ever. Stores now refuse such IDs, so the
// rows are written behind the store's back, as an older build or another program could have.
func TestClaimFindsMessagesOfAnyID(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	if err := s.CreateInstance(ctx, store.Instance{ID: "placeholder", Name: "o", Status: store.StatusPending},
		store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	const badID = "x-\xff"
	err := s.do(ctx, func(w *writer, eff *effects) error {
		for _, q := range []string{`UPDATE instances SET id = ? WHERE id = 'placeholder'`, `UPDATE inbox SET instance_id = ? WHERE instance_id = 'placeholder'`} {
			if _, err := w.conn.ExecContext(w.ctx, q, badID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	work, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(work) != 1 || work[0].Instance.ID != badID {
		t.Fatalf("claimed %d instances, want the one with ID %q", len(work), badID)
	}
	if len(work[0].Messages) != 1 || string(work[0].Messages[0].Data) != "start" {
		t.Fatalf("claim of %q came with %d messages, want its start message", badID, len(work[0].Messages))
	}
	// The store refuses the ID at its front door, with a reason.
	if err := s.CreateInstance(ctx, store.Instance{ID: badID, Name: "o"}, store.Message{Data: []byte("start")}, store.ReuseAlways); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("CreateInstance(%q) = %v, want ErrInvalidArgument", badID, err)
	}
}

// A file of schema version 1 (before claims by name) keeps its waiting work: the migration gives
// its messages their instance's name, so a claimer of that name finds them.
func TestMigrationToClaimsByName(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open(driverName, dsn(path, []string{"journal_mode(WAL)"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		migrations[0],
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		`INSERT INTO schema_version VALUES (1)`,
		`INSERT INTO instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
			VALUES ('default', 'old', 'Legacy', 'e', '', 6, 1, 1)`,
		`INSERT INTO inbox (hub, instance_id, execution_id, data, visible_at) VALUES ('default', 'old', 'e', x'01', 0)`,
		`INSERT INTO tasks (hub, instance_id, execution_id, name, data) VALUES ('default', 'old', 'e', 'Act', x'02')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openTemp(t, path, Options{})
	storetest.CheckMigratedClaims(t, s)
}

// TestClaimIsOneStatementWhateverItsNames checks that a claim of many names runs one claim
// statement, not one per name: a host registers all its orchestrators and activities, and a
// statement per name made every claim pay for names with nothing to claim.
func TestClaimIsOneStatementWhateverItsNames(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	var names store.Names
	for i := range 8 {
		names = append(names, fmt.Sprintf("name-%d", i))
	}
	statements := func() int {
		t.Helper()
		var n int
		if err := s.do(ctx, func(w *writer, eff *effects) error { n = w.claimStatements; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := s.CreateInstance(ctx, store.Instance{ID: "i", Name: "name-5", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	before := statements()
	work, err := s.ClaimOrchestrations(ctx, "n", names, 100, time.Minute)
	if err != nil || len(work) != 1 || len(work[0].Messages) != 1 {
		t.Fatalf("claim: %d instances, %v", len(work), err)
	}
	if n := statements() - before; n != 1 {
		t.Errorf("a claim of %d names ran %d claim statements, want 1", len(names), n)
	}
	e := store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, Consumed: []int64{work[0].Messages[0].ID},
		History: [][]byte{[]byte("h")}, Tasks: []store.Task{{Name: "name-6", Data: []byte("in")}}}
	if err := s.CommitEpisode(ctx, e); err != nil {
		t.Fatal(err)
	}
	before = statements()
	tasks, err := s.ClaimActivities(ctx, "n", names, 100, time.Minute)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("task claim: %d tasks, %v", len(tasks), err)
	}
	if n := statements() - before; n != 1 {
		t.Errorf("a task claim of %d names ran %d claim statements, want 1", len(names), n)
	}

	// A claim of every name but some runs one claim statement too, whatever the names with
	// work, and none when there is no work.
	for i := range 4 {
		id := fmt.Sprint("all-", i)
		if err := s.CreateInstance(ctx, store.Instance{ID: id, Name: fmt.Sprint("any-", i), Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
			t.Fatal(err)
		}
	}
	before = statements()
	work, err = s.ClaimOrchestrations(ctx, "n", store.AllNamesExcept("any-0"), 100, time.Minute)
	if err != nil || len(work) != 3 {
		t.Fatalf("claim of every name but any-0: %d instances, %v; want 3", len(work), err)
	}
	if n := statements() - before; n != 1 {
		t.Errorf("a claim of every name but one, with work of 3 names, ran %d claim statements, want 1", n)
	}
	before = statements()
	if none, err := s.ClaimOrchestrations(ctx, "n", store.AllNamesExcept("any-0"), 100, time.Minute); err != nil || len(none) != 0 {
		t.Fatalf("second claim of every name but any-0: %d instances, %v; want none", len(none), err)
	}
	if n := statements() - before; n != 0 {
		t.Errorf("a claim of every name but one, with no work to take, ran %d claim statements, want 0", n)
	}
}

// TestClaimAllExceptPlans checks the plans of the conditions of claims of every name but some
// (readyNames, readyTaskNames): each step to the next name is one seek past the last one, each
// look for ready work seeks its name, and nothing is scanned or sorted. Otherwise a claim would
// read the whole backlog of the hub, including that of the excluded names, and most claims find
// nothing.
func TestClaimAllExceptPlans(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	for _, tc := range []struct {
		name, query string
		kind        []any // the instance kind, for readyNames
		seeks       []string
	}{
		{"readyNames", readyNamesSQL, []any{int(store.KindOrchestration)}, []string{"inbox_by_kind_name (hub=? AND kind=? AND instance_name>?)",
			"inbox_by_kind_name (hub=? AND kind=? AND instance_name=? AND visible_at<?)", "(hub=? AND id=?)"}},
		{"readyTaskNames", readyTaskNamesSQL, nil, []string{"tasks_by_name (hub=? AND name>?)",
			"tasks_by_name (hub=? AND name=? AND lease_expires<?)"}},
	} {
		var plan []string
		err := s.do(ctx, func(w *writer, eff *effects) error {
			rows, err := w.conn.QueryContext(w.ctx, "EXPLAIN QUERY PLAN "+tc.query, append([]any{w.hub, w.now, `["excluded"]`}, tc.kind...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					return err
				}
				plan = append(plan, detail)
			}
			return rows.Close()
		})
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(plan, "\n")
		for _, step := range plan {
			// The only scans allowed are of the names themselves: the recursive CTE s and the
			// excluded names' JSON array, read once.
			scan := strings.HasPrefix(step, "SCAN ") && step != "SCAN s" && step != "SCAN CONSTANT ROW" &&
				!strings.HasPrefix(step, "SCAN json_each")
			if scan || strings.Contains(step, "TEMP B-TREE") || strings.Contains(step, "AUTOMATIC") {
				t.Errorf("plan of %s has the step %q:\n%s", tc.name, step, all)
			}
		}
		for _, seek := range tc.seeks {
			if !strings.Contains(all, seek) {
				t.Errorf("plan of %s does not seek %s:\n%s", tc.name, seek, all)
			}
		}
	}
}

// TestListByVersionPlans checks the plans of listings filtered by version, which no index covers
// (store.Query.Versions): they walk instances_by_created in the listing's order and stop at the
// page, never sorting the hub's instances in a temporary B-tree nor scanning the table.
func TestListByVersionPlans(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "reprise.db"), Options{})
	for i := range 20 {
		inst := store.Instance{ID: fmt.Sprint("i-", i), Name: "o", Status: store.StatusPending, Version: fmt.Sprint("v", i%3)}
		if err := s.CreateInstance(ctx, inst, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
			t.Fatal(err)
		}
	}
	page, tok, err := s.ListInstances(ctx, store.Query{PageSize: 1})
	if err != nil || len(page) != 1 || tok == "" {
		t.Fatalf("first page: %v, %q, %v", page, tok, err)
	}
	for _, q := range []store.Query{
		{Versions: []string{"v1"}},
		{Versions: []string{"v1", "v2", ""}, NewestFirst: true},
		{Versions: []string{"v1"}, Statuses: []store.Status{store.StatusRunning, store.StatusCompleted}},
		{Versions: []string{"v1"}, Name: "o", IDPrefix: "i-", ContinuationToken: tok},
	} {
		query, args, err := s.listSQL(q, 101)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.readDB.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, "USING INDEX instances_by_created (hub=?") {
			t.Errorf("plan of %+v does not walk instances_by_created:\n%s", q, all)
		}
		if strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN instances") {
			t.Errorf("plan of %+v sorts or scans:\n%s", q, all)
		}
	}
}

// TestObservedTransactions: the observers hear of each transaction, synced exactly when the
// commit synced the log (a durable store's commits of anything but leases) and with its claims
// counted, the empty ones apart; a relaxed store never syncs.
func TestObservedTransactions(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		opts    Options
		durable bool
	}{{"full", Options{}, true}, {"relaxed", Options{Durability: DurabilityRelaxed}, false}} {
		t.Run(c.name, func(t *testing.T) {
			s := openTemp(t, filepath.Join(dir, c.name+".db"), c.opts)
			// The writer tells the observers after it answers the caller: wait for each.
			seen := make(chan store.Transaction, 16)
			remove := s.ObserveTransactions(func(tx store.Transaction) { seen <- tx })
			defer remove()
			next := func(what string, want store.Transaction) {
				t.Helper()
				got := <-seen
				if got.Duration <= 0 {
					t.Fatalf("%s: duration %v, want > 0", what, got.Duration)
				}
				got.Duration = 0
				if got != want {
					t.Fatalf("%s: observed %+v, want %+v", what, got, want)
				}
			}
			ctx := context.Background()
			if err := s.CreateInstance(ctx, store.Instance{ID: "i", Name: "o", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
				t.Fatal(err)
			}
			next("create", store.Transaction{Writes: 1, Synced: c.durable})
			work, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute)
			if err != nil || len(work) != 1 {
				t.Fatalf("claim: %d, %v", len(work), err)
			}
			next("claim", store.Transaction{Writes: 1, Claims: 1})
			if again, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute); err != nil || len(again) != 0 {
				t.Fatalf("second claim: %d, %v; want nothing", len(again), err)
			}
			next("empty claim", store.Transaction{Writes: 1, Claims: 1, EmptyClaims: 1})
			if tasks, err := s.ClaimActivities(ctx, "n", store.Names{"act"}, 10, time.Minute); err != nil || len(tasks) != 0 {
				t.Fatalf("activity claim: %d, %v; want nothing", len(tasks), err)
			}
			next("empty activity claim", store.Transaction{Writes: 1, Claims: 1, EmptyClaims: 1})
			if err := s.CommitEpisode(ctx, store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, Consumed: []int64{work[0].Messages[0].ID}}); err != nil {
				t.Fatal(err)
			}
			next("commit", store.Transaction{Writes: 1, Synced: c.durable})
			remove()
			if err := s.CreateInstance(ctx, store.Instance{ID: "j", Name: "o", Status: store.StatusPending}, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
				t.Fatal(err)
			}
			// The writer tells of a transaction before it takes up the next: once the claim
			// has answered, the create would have been told.
			if _, err := s.ClaimOrchestrations(ctx, "n", store.Names{"o"}, 10, time.Minute); err != nil {
				t.Fatal(err)
			}
			select {
			case tx := <-seen:
				t.Fatalf("observed %+v after the observer was removed", tx)
			default:
			}
		})
	}
}
