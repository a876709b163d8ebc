package reprise_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
)

// episodeLog records which host ran code of which instance: each orchestrator records its host
// wherever it resumes from an Await without replaying, that is once per episode.
type episodeLog struct {
	mu  sync.Mutex
	ran map[string][]string // instance → hosts, in order
}

func (l *episodeLog) add(host, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ran == nil {
		l.ran = map[string][]string{}
	}
	l.ran[id] = append(l.ran[id], host)
}

// hosts returns the distinct hosts that ran episodes of the instance.
func (l *episodeLog) hosts(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := slices.Clone(l.ran[id])
	slices.Sort(h)
	return slices.Compact(h)
}

// rejectWatch is a log handler that tells which instances a host gave back for their version.
type rejectWatch struct {
	mu       sync.Mutex
	rejected map[string]bool
	changed  chan struct{}
}

func newRejectWatch() *rejectWatch {
	return &rejectWatch{rejected: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (w *rejectWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *rejectWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *rejectWatch) WithGroup(string) slog.Handler            { return w }
func (w *rejectWatch) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "orchestration left for a host that runs its version") {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "instanceId" {
			w.mu.Lock()
			w.rejected[a.Value.String()] = true
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
		return true
	})
	return nil
}

// wait waits until the host gave back every one of the instances at least once.
func (w *rejectWatch) wait(t *testing.T, ids ...string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		w.mu.Lock()
		all := true
		for _, id := range ids {
			all = all && w.rejected[id]
		}
		w.mu.Unlock()
		if all {
			return
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("the host did not give back all of %v", ids)
		}
	}
}

// versionHost starts a host named host on the hub: an orchestrator that calls an activity, then a
// sub-orchestration, and returns "host|its version|the child's version", recording the host of
// each episode of both in log.
func versionHost(t *testing.T, dsn, hub, host string, v reprise.Versioning, log *episodeLog, watch *rejectWatch) *reprise.App {
	t.Helper()
	step := reprise.NewActivity("step", func(ctx context.Context, _ reprise.None) (string, error) { return host, nil })
	child := reprise.NewOrchestrator("versioned_child", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if !ctx.IsReplaying() {
			log.add(host, ctx.InstanceID())
		}
		return ctx.Version(), nil
	})
	parent := reprise.NewOrchestrator("versioned", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if !ctx.IsReplaying() {
			log.add(host, ctx.InstanceID())
		}
		if _, err := step.Call(ctx, reprise.None{}).Await(); err != nil {
			return "", err
		}
		if !ctx.IsReplaying() {
			log.add(host, ctx.InstanceID())
		}
		cv, err := child.Call(ctx, reprise.None{}).Await()
		if !ctx.IsReplaying() {
			log.add(host, ctx.InstanceID())
		}
		return host + "|" + ctx.Version() + "|" + cv, err
	})
	var handler slog.Handler = slog.DiscardHandler
	if watch != nil {
		handler = watch
	}
	app := reprise.NewApp(reprise.WithPostgres(dsn), reprise.WithHub(hub), reprise.WithVersioning(v),
		reprise.WithLogger(slog.New(handler)), reprise.WithLeaseDuration(3*time.Second),
		reprise.WithPollInterval(100*time.Millisecond))
	app.Register(step, child, parent)
	if err := app.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown of %s: %v", host, err)
		}
	})
	return app
}

// TestVersionedHosts: two hosts of different versions share one PostgreSQL task hub, with
// instances of both versions (and without one); each host runs only the instances its match
// strategy allows, and the others wait, untouched, for a host that runs them.
func TestVersionedHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hosts on PostgreSQL")
	}
	dsn := pgtest.DSN(t) // one database, a hub per subtest
	startOn := func(app *reprise.App, version string) string {
		t.Helper()
		var opts []reprise.StartOption
		if version != "" {
			opts = append(opts, reprise.WithVersion(version))
		}
		id, err := app.Client().StartNew(testCtx(t), "versioned", nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	check := func(t *testing.T, app *reprise.App, log *episodeLog, id, version string, hosts ...string) {
		t.Helper()
		inst := waitDone(t, app.Client(), id)
		if inst.Status != reprise.StatusCompleted || inst.Version != version {
			t.Fatalf("%s: %s, version %q, output %s; want Completed, %q", id, inst.Status, inst.Version, inst.Output, version)
		}
		kid, err := app.Client().GetInstance(testCtx(t), id+":1")
		if err != nil || kid.Version != version || string(kid.Output) != fmt.Sprintf("%q", version) {
			t.Fatalf("child of %s: %+v, %v; want version %q inherited", id, kid, err, version)
		}
		for _, x := range []string{id, id + ":1"} {
			if got := log.hosts(x); len(got) == 0 || !isSubset(got, hosts) {
				t.Errorf("%s (version %q) ran on %v, want only on %v", x, version, got, hosts)
			}
		}
	}

	t.Run("CurrentOrOlder", func(t *testing.T) {
		var log episodeLog
		// A client that runs nothing: it starts instances with exactly the versions given.
		cli := reprise.NewApp(reprise.WithPostgres(dsn), reprise.WithHub("v_current"), reprise.WithLogger(slog.New(slog.DiscardHandler)))
		if err := cli.Start(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		defer cli.Shutdown(context.Background())
		oldWatch := newRejectWatch()
		old := versionHost(t, dsn, "v_current", "old", reprise.Versioning{DefaultVersion: "1.0"}, &log, oldWatch)
		byDefault := startOn(old, "") // the old host's client stamps its default, 1.0
		none := startOn(cli, "")
		older := startOn(cli, "0.9")
		newer := startOn(cli, "2.0")
		check(t, cli, &log, byDefault, "1.0", "old")
		check(t, cli, &log, none, "", "old")
		check(t, cli, &log, older, "0.9", "old")
		oldWatch.wait(t, newer)
		if inst, err := cli.Client().GetInstance(testCtx(t), newer); err != nil || inst.Status != reprise.StatusPending || len(log.hosts(newer)) != 0 {
			t.Fatalf("the 2.0 instance before a 2.0 host came: %+v, %v, ran on %v; want Pending, untouched", inst, err, log.hosts(newer))
		}

		newHost := versionHost(t, dsn, "v_current", "new", reprise.Versioning{DefaultVersion: "2.0"}, &log, nil)
		check(t, cli, &log, newer, "2.0", "new")
		// With both up: 2.0 only on the new host; 1.0 on either (the new host runs older ones).
		var later2, later1 []string
		for range 4 {
			later2 = append(later2, startOn(cli, "2.0"))
			later1 = append(later1, startOn(newHost, "1.0"))
		}
		for i := range later2 {
			check(t, cli, &log, later2[i], "2.0", "new")
			check(t, cli, &log, later1[i], "1.0", "old", "new")
		}
		if inst, _ := cli.Client().GetInstance(testCtx(t), newer); !strings.HasPrefix(string(inst.Output), `"new|2.0|2.0"`) {
			t.Errorf("output of the 2.0 instance %s, want the new host's, with 2.0 inherited", inst.Output)
		}
	})

	t.Run("Strict", func(t *testing.T) {
		var log episodeLog
		cli := reprise.NewApp(reprise.WithPostgres(dsn), reprise.WithHub("v_strict"), reprise.WithLogger(slog.New(slog.DiscardHandler)))
		if err := cli.Start(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		defer cli.Shutdown(context.Background())
		newWatch, oldWatch := newRejectWatch(), newRejectWatch()
		strict := reprise.VersionMatchStrict
		versionHost(t, dsn, "v_strict", "new", reprise.Versioning{DefaultVersion: "2.0", MatchStrategy: strict}, &log, newWatch)
		v1, v2, none := startOn(cli, "1.0"), startOn(cli, "2.0"), startOn(cli, "")
		check(t, cli, &log, v2, "2.0", "new")
		newWatch.wait(t, v1, none) // Strict: neither older nor unversioned instances run here

		versionHost(t, dsn, "v_strict", "old", reprise.Versioning{DefaultVersion: "1.0", MatchStrategy: strict}, &log, oldWatch)
		check(t, cli, &log, v1, "1.0", "old")
		oldWatch.wait(t, none)
		var more1, more2 []string
		for range 4 {
			more1, more2 = append(more1, startOn(cli, "1.0")), append(more2, startOn(cli, "2.0"))
		}
		for i := range more1 {
			check(t, cli, &log, more1[i], "1.0", "old")
			check(t, cli, &log, more2[i], "2.0", "new")
		}
		if inst, err := cli.Client().GetInstance(testCtx(t), none); err != nil || inst.Status != reprise.StatusPending || len(log.hosts(none)) != 0 {
			t.Errorf("the instance without a version under Strict: %+v, %v, ran on %v; want Pending, untouched", inst, err, log.hosts(none))
		}
	})

	t.Run("Fail", func(t *testing.T) {
		var log episodeLog
		old := versionHost(t, dsn, "v_fail", "old", reprise.Versioning{DefaultVersion: "1.0", FailureStrategy: reprise.VersionFailureFail}, &log, nil)
		id := startOn(old, "1.10") // 1.10 > 1.0 as versions
		inst := waitDone(t, old.Client(), id)
		const msg = "The orchestration version '1.10' is greater than the worker version '1.0'."
		if inst.Status != reprise.StatusFailed || inst.Failure == nil || inst.Failure.Type != "VersionMismatch" ||
			inst.Failure.Message != msg || len(log.hosts(id)) != 0 {
			t.Fatalf("%s: %s, failure %+v, ran on %v; want Failed with VersionMismatch %q, not run", id, inst.Status, inst.Failure, log.hosts(id), msg)
		}
		check(t, old, &log, startOn(old, "1.0"), "1.0", "old")
	})
}

func isSubset(got, allowed []string) bool {
	for _, g := range got {
		if !slices.Contains(allowed, g) {
			return false
		}
	}
	return true
}

// TestDefaultVersionFromHostJSON: host.json's defaultVersion is stamped on instances started
// without a version, through the Client and the management API alike; the orchestrator reads it
// with ctx.Version, its sub-orchestrations inherit it, and WithVersion overrides it.
func TestDefaultVersionFromHostJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.json")
	if err := os.WriteFile(path, []byte(`{"version":"2.0","extensions":{"durableTask":{"defaultVersion":"1.5","versionMatchStrategy":"None"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REPRISE_HOST_JSON", path)
	var log episodeLog
	child := reprise.NewOrchestrator("versioned_child", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return ctx.Version(), nil
	})
	parent := reprise.NewOrchestrator("versioned", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		log.add("h", ctx.InstanceID())
		inherited, err := child.Call(ctx, reprise.None{}).Await()
		if err != nil {
			return nil, err
		}
		chosen, err := child.Call(ctx, reprise.None{}, reprise.WithVersion("0.1")).Await()
		return []string{ctx.Version(), inherited, chosen}, err
	})
	app := startApp(t, []reprise.Definition{parent, child}, reprise.WithAnonymousManagement())
	c := app.Client()

	id, err := parent.Start(testCtx(t), c, reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Version != "1.5" || string(inst.Output) != `["1.5","1.5","0.1"]` {
		t.Fatalf("started without a version: version %q, output %s; want 1.5 everywhere but the chosen child", inst.Version, inst.Output)
	}
	id, err = parent.Start(testCtx(t), c, reprise.None{}, reprise.WithVersion("3.0"))
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Version != "3.0" || string(inst.Output) != `["3.0","3.0","0.1"]` {
		t.Fatalf("started with 3.0: version %q, output %s", inst.Version, inst.Output)
	}

	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/runtime/webhooks/durabletask/orchestrators/versioned/from-http", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start over HTTP: %d", resp.StatusCode)
	}
	if inst := waitDone(t, c, "from-http"); inst.Version != "1.5" {
		t.Fatalf("started over the management API: version %q, want the default 1.5", inst.Version)
	}
}

// TestVersionIsKept: continue-as-new, rewind and restart keep the instance's version, and the
// orchestrator sees it in every execution.
func TestVersionIsKept(t *testing.T) {
	var failOnce sync.Once
	flaky := reprise.NewActivity("flaky_once", func(ctx context.Context, _ reprise.None) (string, error) {
		var err error
		failOnce.Do(func() { err = fmt.Errorf("the first call fails") })
		info, _ := reprise.ActivityInfoFrom(ctx)
		return info.Version, err
	})
	orch := reprise.NewOrchestrator("kept", func(ctx *reprise.OrchestrationContext, round int) (string, error) {
		if round == 0 {
			return "", ctx.ContinueAsNew(1, false)
		}
		seen, err := flaky.Call(ctx, reprise.None{}).Await()
		return ctx.Version() + "/" + seen, err
	})
	app := startApp(t, []reprise.Definition{flaky, orch}, reprise.WithVersioning(reprise.Versioning{DefaultVersion: "9.0"}))
	c := app.Client()
	id, err := orch.Start(testCtx(t), c, 0, reprise.WithVersion("1.2"))
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Status != reprise.StatusFailed || inst.Version != "1.2" {
		t.Fatalf("after continue-as-new, the first attempt: %s, version %q; want Failed, 1.2", inst.Status, inst.Version)
	}
	if err := c.Rewind(testCtx(t), id, "try again"); err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Status != reprise.StatusCompleted || inst.Version != "1.2" || string(inst.Output) != `"1.2/1.2"` {
		t.Fatalf("after the rewind: %s, version %q, output %s; want Completed, 1.2, the version seen by both", inst.Status, inst.Version, inst.Output)
	}
	again, err := c.Restart(testCtx(t), id, true)
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, again); inst.Version != "1.2" || string(inst.Output) != `"1.2/1.2"` {
		t.Fatalf("restarted under a new ID: version %q, output %s; want 1.2, not the default 9.0", inst.Version, inst.Output)
	}
}
