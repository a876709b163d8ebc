package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

const waitFor = 10 * time.Second

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("no %s", what)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func create(t *testing.T, s *Store, id string) {
	t.Helper()
	inst := store.Instance{ID: id, Name: "o", ExecutionID: "e-" + id, Status: store.StatusPending}
	if err := s.CreateInstance(t.Context(), inst, store.Message{Data: []byte("start")}, store.ReuseIfFinished); err != nil {
		t.Fatalf("CreateInstance(%s): %v", id, err)
	}
}

func claim(t *testing.T, s *Store, owner string, lease time.Duration) []store.OrchestrationWork {
	t.Helper()
	w, err := s.ClaimOrchestrations(t.Context(), owner, store.Names{"o"}, 10, lease)
	if err != nil {
		t.Fatalf("ClaimOrchestrations(%s): %v", owner, err)
	}
	return w
}

// commitWithMessage commits w consuming its messages and leaving one more message for the
// instance, so that it is claimable again at once.
func commitWithMessage(t *testing.T, s *Store, w store.OrchestrationWork, status store.Status) {
	t.Helper()
	e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte("h")}}
	for _, m := range w.Messages {
		e.Consumed = append(e.Consumed, m.ID)
	}
	e.Instance.Status = status
	e.Messages = []store.Message{{Data: []byte("next")}}
	if err := s.CommitEpisode(t.Context(), e); err != nil {
		t.Fatalf("CommitEpisode(%s): %v", w.Instance.ID, err)
	}
}

func TestDefaultHubAndChannel(t *testing.T) {
	s := openStore(t, pgtest.DSN(t), Options{})
	if s.Hub() != "default" {
		t.Fatalf("Hub() = %q, want default", s.Hub())
	}
	if c := channelName(strings.Repeat("long hub name ", 20)); len(c) > 63 || c == s.channel {
		t.Fatalf("channel name %q: too long, or equal to another hub's", c)
	}
}

func TestConcurrentOpenMigrates(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn, Options{Hub: fmt.Sprintf("h%d", i), MaxConns: 2})
			if err == nil {
				create(t, s, "x")
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d of 5 at once: %v", i, err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var versions, version int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), max(version) FROM reprise.schema_version`).Scan(&versions, &version); err != nil {
		t.Fatal(err)
	}
	if versions != 1 || version != len(migrations) {
		t.Fatalf("schema_version has %d rows, version %d; want 1 row, version %d", versions, version, len(migrations))
	}

	// A database migrated by a newer build is refused, with a clear error.
	if _, err := conn.Exec(t.Context(), `UPDATE reprise.schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), dsn, Options{})
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "upgrade reprise") {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema saying what to do", err)
	}
}

func TestConnectErrorNamesTheServer(t *testing.T) {
	_, err := Open(t.Context(), "postgres://someone:s3cret-pw@127.0.0.1:1/somedb?connect_timeout=2", Options{})
	if err == nil {
		t.Fatal("Open succeeded on a closed port")
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1:1", `"somedb"`, `"someone"`, "check"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret-pw") {
		t.Errorf("error %q shows the password", msg)
	}
	if _, err := Open(t.Context(), "postgres://a:b@host:notaport/db", Options{}); err == nil || strings.Contains(err.Error(), ":b@") {
		t.Errorf("Open with a malformed DSN: %v (want an error without the password)", err)
	}
}

// TestCrossHostWakeUps checks that a commit on one host wakes the dispatchers and watchers of
// another (two stores on one hub stand for two hosts), through LISTEN/NOTIFY.
func TestCrossHostWakeUps(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openStore(t, dsn, Options{Hub: "shared"})
	b := openStore(t, dsn, Options{Hub: "shared"})
	other := openStore(t, dsn, Options{Hub: "other"})
	bo, ba := b.WorkSignal(store.OrchestrationWorkKind), b.WorkSignal(store.ActivityWorkKind)

	drain(bo)
	create(t, a, "x")
	waitSignal(t, bo, "orchestration signal on host b after host a created an instance")

	changed, stop := b.WatchInstance("x")
	defer stop()
	w := claim(t, b, "host-b", time.Minute)
	if len(w) != 1 {
		t.Fatalf("host b claimed %d instances, want x", len(w))
	}
	drain(ba)
	e := store.Episode{Lease: w[0].Lease, Instance: w[0].Instance, Consumed: []int64{w[0].Messages[0].ID}}
	e.Instance.Status = store.StatusRunning
	e.Tasks = []store.Task{{Name: "act", Data: []byte("in")}}
	if err := b.CommitEpisode(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changed, "watch closed on the host that committed")

	// Host a runs the activity; host b hears of the result.
	waitSignal(t, a.WorkSignal(store.ActivityWorkKind), "activity signal on host a after host b scheduled a task")
	tasks, err := a.ClaimActivities(t.Context(), "host-a", store.Names{"a", "act", "t"}, 10, time.Minute)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("host a claimed %d tasks (%v), want 1", len(tasks), err)
	}
	drain(bo)
	if err := a.CompleteActivity(t.Context(), tasks[0].Task.ID, tasks[0].Lease, store.Message{Data: []byte("out")}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, bo, "orchestration signal on host b after host a completed its activity")

	// A status change committed on host a closes a watch on host b.
	changed, stop = b.WatchInstance("x")
	defer stop()
	otherChanged, stopOther := other.WatchInstance("x")
	defer stopOther()
	w = claim(t, a, "host-a", time.Minute)
	if len(w) != 1 {
		t.Fatalf("host a claimed %d instances, want x", len(w))
	}
	e = store.Episode{Lease: w[0].Lease, Instance: w[0].Instance, Consumed: []int64{w[0].Messages[0].ID}}
	e.Instance.Status = store.StatusCompleted
	e.Instance.Output = []byte(`"done"`)
	if err := a.CommitEpisode(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, changed, "watch closed on host b after host a completed the instance")
	if got, err := b.GetInstance(t.Context(), "x"); err != nil || got.Status != store.StatusCompleted {
		t.Fatalf("host b reads %+v, %v after the watch fired", got, err)
	}
	select {
	case <-otherChanged:
		t.Fatal("a watch in another hub fired")
	case <-time.After(100 * time.Millisecond):
	}

	// Long instance IDs travel too.
	long := strings.Repeat("x", 2000)
	longChanged, stopLong := b.WatchInstance(long)
	defer stopLong()
	create(t, a, long)
	waitSignal(t, longChanged, "watch on a long instance ID closed after another host created it")
}

// TestListenerReconnects kills the listener's connection and checks that wake-ups from another
// host resume.
func TestListenerReconnects(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openStore(t, dsn, Options{Hub: "h"})
	b := openStore(t, dsn+"&application_name=host-b", Options{Hub: "h"})
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	err = admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'host-b-listener'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v), want 1", killed, err)
	}
	sig := b.WorkSignal(store.OrchestrationWorkKind)
	i := 0
	storetest.Eventually(t, "host b to hear of host a's work after its listener was killed", func() bool {
		drain(sig)
		i++
		create(t, a, fmt.Sprintf("i%d", i))
		select {
		case <-sig:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

func TestBadInput(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, pgtest.DSN(t), Options{})
	if err := s.CreateInstance(ctx, store.Instance{}, store.Message{}, store.ReuseNever); err == nil {
		t.Fatal("CreateInstance accepted an empty ID")
	}
	if err := s.CreateInstance(ctx, store.Instance{ID: "x"}, store.Message{}, store.ReusePolicy(9)); err == nil {
		t.Fatal("CreateInstance accepted an unknown policy")
	}
	if _, err := s.ClaimOrchestrations(ctx, "", store.Names{"o"}, 1, time.Second); err == nil {
		t.Fatal("claim accepted an empty owner")
	}
	if _, err := s.ClaimActivities(ctx, "n", store.Names{"a", "act", "t"}, 0, time.Second); err == nil {
		t.Fatal("claim accepted max 0")
	}
	if err := s.CommitEpisode(ctx, store.Episode{}); err == nil {
		t.Fatal("CommitEpisode accepted an empty episode")
	}
	if _, _, err := s.ListInstances(ctx, store.Query{ContinuationToken: "bm90LWEtdG9rZW4"}); !errors.Is(err, store.ErrInvalidToken) {
		t.Fatalf("ListInstances with a base64 non-token: %v, want ErrInvalidToken", err)
	}
	// Text PostgreSQL refuses (a NUL byte) fails that operation alone, not the others committed
	// in the same transaction.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			id := fmt.Sprintf("ok-%d", i)
			if i == 7 {
				id = "bad\x00id"
			}
			errs[i] = s.CreateInstance(ctx, store.Instance{ID: id, Name: "o"}, store.Message{}, store.ReuseNever)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Fatalf("create %d: %v", i, err)
		}
	}
}

// TestReleaseOnAnotherHost: the tasks a leaving host releases are claimable at once by another
// host, even though task claims look for dead leases only now and then.
func TestReleaseOnAnotherHost(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openStore(t, dsn, Options{Hub: "h"})
	b := openStore(t, dsn, Options{Hub: "h"})
	sig := b.WorkSignal(store.ActivityWorkKind)
	create(t, a, "x")
	w := claim(t, a, "A", time.Minute)
	drain(sig)
	e := store.Episode{Lease: w[0].Lease, Instance: w[0].Instance, Tasks: []store.Task{{Name: "t", Data: []byte("x")}}}
	if err := a.CommitEpisode(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	// The commit's activity notification reaches B asynchronously. Wait for it here: arriving
	// after the release below, it would wake B before the release's notification, whose
	// handling is what lets B's next claim look for dead leases (B's claim would find nothing).
	waitSignal(t, sig, "activity signal on B after A's episode created a task")
	if got, err := a.ClaimActivities(t.Context(), "A", store.Names{"a", "act", "t"}, 10, time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("A claimed %d tasks (%v), want 1", len(got), err)
	}
	// b claims once (nothing to take), so that its next claim would not look for dead leases.
	if got, err := b.ClaimActivities(t.Context(), "B", store.Names{"a", "act", "t"}, 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("B claimed %d tasks (%v) under A's live lease", len(got), err)
	}
	drain(sig)
	if err := a.ReleaseLeases(t.Context(), "A"); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, sig, "activity signal on B after A released its leases")
	if got, err := b.ClaimActivities(t.Context(), "B", store.Names{"a", "act", "t"}, 10, time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("B claimed %d tasks (%v) right after A released its leases, want 1", len(got), err)
	}
}

// A database of schema version 1 (before claims by name) keeps its waiting work: the migration
// gives its messages their instance's name, so a claimer of that name finds them.
func TestMigrationToClaimsByName(t *testing.T) {
	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		`CREATE SCHEMA reprise`,
		migrations[0],
		`CREATE TABLE reprise.schema_version (version integer NOT NULL)`,
		`INSERT INTO reprise.schema_version VALUES (1)`,
		`INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
			VALUES ('h', 'old', 'Legacy', 'e', '', 6, now(), now())`,
		`INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at) VALUES ('h', 'old', 'e', '\x01', now())`,
		`INSERT INTO reprise.tasks (hub, instance_id, execution_id, name, data) VALUES ('h', 'old', 'e', 'Act', '\x02')`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := openStore(t, dsn, Options{Hub: "h"})
	storetest.CheckMigratedClaims(t, s)
}
