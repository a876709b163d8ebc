package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// scrape is one read of /metrics in the Prometheus text format.
type scrape string

// value sums the samples of the metric name whose labels include every label given ("k", "v"
// pairs); a metric with no such sample sums to 0. found says whether any sample matched.
func (s scrape) value(name string, labels ...string) (sum float64, found bool) {
	for line := range strings.Lines(string(s)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(","+lbls, ","+labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		sum, found = sum+f, true
	}
	return sum, found
}

func getMetrics(t *testing.T, url string, header ...string) scrape {
	t.Helper()
	r := hosttest.Do(t, "GET", url, nil, header...)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, r.StatusCode, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: content type %q, want the Prometheus text format", url, ct)
	}
	return scrape(r.Body)
}

// waitMetrics scrapes until every want holds, then checks them once more for the message. The
// counters are recorded just after the commits that a waiting client sees, so the last ones may
// land a moment after the instances finished.
func waitMetrics(t *testing.T, get func() scrape, want map[string]float64) scrape {
	t.Helper()
	check := func(s scrape) []string {
		var wrong []string
		for key, w := range want {
			parts := strings.Split(key, " ")
			got, _ := s.value(parts[0], parts[1:]...)
			if got != w {
				wrong = append(wrong, fmt.Sprintf("%s = %v, want %v", key, got, w))
			}
		}
		return wrong
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := get()
		wrong := check(s)
		if len(wrong) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after the workload:\n%s\n--- scrape:\n%s", strings.Join(wrong, "\n"), s)
		}
		time.Sleep(20 * time.Millisecond) // polling a value that has no signal of its own
	}
}

// TestMetricsAfterHelloSequences runs five hello sequences and checks the exact counts on
// /metrics, the key it takes, and that no instance ID appears in any label.
func TestMetricsAfterHelloSequences(t *testing.T) {
	keys := reprise.Keys{Master: "master-1", Host: []string{"host-1"}, System: "system-1"}
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(keys))...)
	app.Register(sayHello, helloSequence)
	srv := hosttest.Serve(t, app)
	ctx := testCtx(t)

	for _, c := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"host key", []string{"x-functions-key", "host-1"}, http.StatusUnauthorized},
		{"system key", []string{"x-functions-key", "system-1"}, http.StatusUnauthorized},
		{"master key", []string{"x-functions-key", "master-1"}, http.StatusOK},
	} {
		if r := hosttest.Do(t, "GET", srv.URL+"/metrics", nil, c.header...); r.StatusCode != c.want {
			t.Errorf("/metrics with %s: %d %s, want %d", c.name, r.StatusCode, r.Body, c.want)
		}
	}

	var ids []string
	for range 5 {
		id, err := helloSequence.Start(ctx, app.Client(), reprise.None{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
			t.Fatalf("%s: %s", id, inst.Status)
		}
	}
	// One request of the management API, for the HTTP instrumentation.
	if r := hosttest.Do(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances/"+ids[0], nil, "x-functions-key", "master-1"); r.StatusCode != http.StatusOK {
		t.Fatalf("status query: %d", r.StatusCode)
	}

	const orch, act = `name hello_sequence_orchestrator`, `name say_hello`
	s := waitMetrics(t, func() scrape { return getMetrics(t, srv.URL+"/metrics?code=master-1") }, map[string]float64{
		"reprise_orchestrations_started_total " + orch:                         5,
		"reprise_orchestrations_completed_total " + orch + " status Completed": 5,
		"reprise_orchestrations_completed_total " + orch + " status Failed":    0,
		"reprise_episodes_total " + orch:                                       20, // the start and three results each
		"reprise_episode_duration_seconds_count " + orch:                       20,
		"reprise_replays_total":                                                0, // every execution stayed cached
		"reprise_activities_total " + act + " status Completed":                15,
		"reprise_activity_duration_seconds_count " + act + " status Completed": 15,
		"reprise_activity_schedule_to_start_seconds_count " + act:              15,
		"reprise_timers_fired_total":                                           0,
		"reprise_leases_lost_total":                                            0,
		"reprise_backlog kind orchestration":                                   0,
		"reprise_backlog kind activity":                                        0,
		"reprise_backlog kind entity":                                          0,
		// The standard HTTP instrumentation, by route pattern (no instance ID in the path label).
		"http_server_request_duration_seconds_count http_route /runtime/webhooks/durabletask/ http_response_status_code 200": 1,
		"http_server_request_duration_seconds_count http_route /metrics http_response_status_code 401":                       3,
	})
	for _, kind := range []string{"orchestration", "activity", "entity"} {
		if _, ok := s.value("reprise_backlog", "kind", kind); !ok {
			t.Errorf("no reprise_backlog sample of kind %s", kind)
		}
	}
	tx, _ := s.value("reprise_store_transactions_total")
	batches, _ := s.value("reprise_store_commit_batch_size_count")
	commits, _ := s.value("reprise_store_commit_duration_seconds_count")
	// At least the 5 creates and 20 episodes (15 of them with an activity's completion: merged
	// completions), grouped into transactions.
	writes, _ := s.value("reprise_store_commit_batch_size_sum")
	if tx < 1 || batches != tx || commits != tx || writes < 25 {
		t.Errorf("store: %v transactions, %v batch sizes, %v commit times, %v writes; want equal counts and at least 25 writes", tx, batches, commits, writes)
	}
	for _, id := range ids {
		if strings.Contains(string(s), id) {
			t.Errorf("instance ID %s appears on /metrics", id)
		}
	}
	for line := range strings.Lines(string(s)) {
		if _, labels, ok := strings.Cut(line, "{"); ok && !strings.HasPrefix(line, "#") && strings.Contains(labels, "instance") {
			t.Errorf("a label names an instance: %s", line)
		}
	}
}

// TestMetricsAnonymousAndListener: an anonymous management API serves /metrics without a key;
// WithMetricsListener serves it without a key on a listener of its own; WithoutMetrics turns it off.
func TestMetricsAnonymousAndListener(t *testing.T) {
	anon := hosttest.Serve(t, reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...))
	if s := getMetrics(t, anon.URL+"/metrics"); !strings.Contains(string(s), "reprise_backlog{") {
		t.Errorf("anonymous /metrics has no backlog gauge:\n%s", s)
	}

	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{Master: "m"}),
		reprise.WithMetricsListener("127.0.0.1:0"))...)
	srv := hosttest.Serve(t, app)
	addr := app.MetricsAddr()
	if addr == nil {
		t.Fatal("MetricsAddr is nil with WithMetricsListener")
	}
	if s := getMetrics(t, "http://"+addr.String()+"/metrics"); !strings.Contains(string(s), "reprise_backlog{") {
		t.Errorf("the metrics listener has no backlog gauge:\n%s", s)
	}
	if r := hosttest.Do(t, "GET", srv.URL+"/metrics", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics of the main listener without a key: %d, want 401 (the listener of its own does not open it)", r.StatusCode)
	}
	req, err := http.NewRequest("GET", "http://"+addr.String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example" // a page of another site, through DNS rebinding
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the loopback metrics listener asked under a foreign Host name: %d, want 403", resp.StatusCode)
	}

	off := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(), reprise.WithoutMetrics())...)
	offSrv := hosttest.Serve(t, off)
	if r := hosttest.Do(t, "GET", offSrv.URL+"/metrics", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics with metrics off: %d, want 404", r.StatusCode)
	}
	if off.MeterProvider() != nil {
		t.Error("MeterProvider is not nil with metrics off")
	}
}

// TestMetricsBacklog checks the backlog gauge on both stores: work that no host here takes
// (orchestrations and entities whose names are not registered, tasks of an unregistered activity)
// stays visible in it.
func TestMetricsBacklog(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var st store.Store
			var err error
			ctx := testCtx(t)
			if kind == "sqlite" {
				st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"), sqlite.Options{})
			} else {
				st, err = postgres.Open(ctx, pgtest.DSN(t), postgres.Options{MaxConns: 4})
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			for i := range 3 {
				id := fmt.Sprintf("nobody-%d", i)
				inst := store.Instance{ID: id, Name: "unregistered", ExecutionID: "x", Status: store.StatusPending}
				if err := st.CreateInstance(ctx, inst, store.Message{InstanceID: id, Data: []byte("{}")}, store.ReuseNever); err != nil {
					t.Fatal(err)
				}
			}
			// One of them schedules two tasks of an activity no one registered.
			w, err := st.ClaimOrchestrations(ctx, "test", store.Names{"unregistered"}, 1, time.Minute)
			if err != nil || len(w) != 1 {
				t.Fatalf("claim: %v, %d items", err, len(w))
			}
			ep := store.Episode{Lease: w[0].Lease, Instance: w[0].Instance, Consumed: []int64{w[0].Messages[0].ID}}
			ep.Instance.Status = store.StatusRunning
			for range 2 {
				ep.Tasks = append(ep.Tasks, store.Task{InstanceID: w[0].Instance.ID, ExecutionID: "x", Name: "unregistered_activity"})
			}
			if err := st.CommitEpisode(ctx, ep); err != nil {
				t.Fatal(err)
			}
			e := store.EntityInstanceID("unregistered_entity", "k")
			if err := st.SendEntityMessages(ctx, []store.Message{{InstanceID: e, Data: []byte("{}")}, {InstanceID: e, Data: []byte("{}")},
				{InstanceID: e, Data: []byte("{}")}, {InstanceID: e, Data: []byte("{}")}}); err != nil {
				t.Fatal(err)
			}

			app := reprise.NewApp(append(hosttest.Options(t), reprise.WithStore(st), reprise.WithAnonymousManagement())...)
			app.Register(sayHello)
			srv := hosttest.Serve(t, app)
			s := getMetrics(t, srv.URL+"/metrics")
			for k, want := range map[string]float64{"orchestration": 2, "activity": 2, "entity": 4} {
				if got, _ := s.value("reprise_backlog", "kind", k); got != want {
					t.Errorf("reprise_backlog{kind=%q} = %v, want %v", k, got, want)
				}
			}
		})
	}
}

// TestMetricsTimersRetriesAndFailures: a durable timer, an activity that fails twice before a
// retry policy gets it through (its two retry delays are durable timers too), and an
// orchestration that fails, counted exactly.
func TestMetricsTimersRetriesAndFailures(t *testing.T) {
	var calls atomic.Int32
	flaky := reprise.NewActivity("flaky", func(ctx context.Context, _ reprise.None) (string, error) {
		if calls.Add(1) <= 2 {
			return "", errors.New("not yet")
		}
		return "done", nil
	})
	flow := reprise.NewOrchestrator("flaky_flow", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if _, err := ctx.CreateTimer(10 * time.Millisecond).Await(); err != nil {
			return "", err
		}
		return flaky.Call(ctx, reprise.None{}, reprise.WithRetry(reprise.RetryPolicy{FirstInterval: 10 * time.Millisecond, MaxAttempts: 3})).Await()
	})
	doomed := reprise.NewOrchestrator("doomed", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return "", errors.New("doomed from the start")
	})
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(flaky, flow, doomed)
	srv := hosttest.Serve(t, app)
	ctx := testCtx(t)
	a, err := flow.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := doomed.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, app.Client(), a); inst.Status != reprise.StatusCompleted {
		t.Fatalf("flaky_flow: %s %+v", inst.Status, inst.Failure)
	}
	if inst := waitDone(t, app.Client(), b); inst.Status != reprise.StatusFailed {
		t.Fatalf("doomed: %s", inst.Status)
	}
	waitMetrics(t, func() scrape { return getMetrics(t, srv.URL+"/metrics") }, map[string]float64{
		"reprise_timers_fired_total":                                              3, // the timer and two retry delays
		"reprise_timer_lateness_seconds_count":                                    3,
		"reprise_retries_total name flaky":                                        2,
		"reprise_activities_total name flaky status Failed":                       2,
		"reprise_activities_total name flaky status Completed":                    1,
		"reprise_orchestrations_completed_total name flaky_flow status Completed": 1,
		"reprise_orchestrations_completed_total name doomed status Failed":        1,
		"reprise_orchestrations_started_total":                                    2,
	})
}

// TestMetricsEntityOperations: three operations that succeed and one that fails, in however
// many batches the dispatcher makes of them.
func TestMetricsEntityOperations(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(counter)
	srv := hosttest.Serve(t, app)
	ctx := testCtx(t)
	id := counter.ID("metrics")
	for _, op := range []string{"add", "add", "fail", "add"} {
		if err := app.Client().SignalEntity(ctx, id, op, 1); err != nil {
			t.Fatal(err)
		}
	}
	s := waitMetrics(t, func() scrape { return getMetrics(t, srv.URL+"/metrics") }, map[string]float64{
		"reprise_entity_operations_total name counter status Completed": 3,
		"reprise_entity_operations_total name counter status Failed":    1,
	})
	if n, _ := s.value("reprise_entity_batches_total", "name", "counter"); n < 1 || n > 4 {
		t.Errorf("reprise_entity_batches_total = %v, want 1 to 4 batches for 4 operations", n)
	}
	if strings.Contains(string(s), "@counter@") {
		t.Errorf("an entity ID appears on /metrics:\n%s", s)
	}
}

// TestMetricsRetention: the instances retention purges are counted by final status.
func TestMetricsRetention(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(),
		reprise.WithRetention(reprise.Retention{Completed: time.Nanosecond, Failed: -1, Interval: 10 * time.Millisecond}))...)
	app.Register(helloSequence, sayHello)
	srv := hosttest.Serve(t, app)
	ctx := testCtx(t)
	// Not waited for one by one: retention may purge an instance as soon as it has finished.
	for range 3 {
		if _, err := helloSequence.Start(ctx, app.Client(), reprise.None{}); err != nil {
			t.Fatal(err)
		}
	}
	waitMetrics(t, func() scrape { return getMetrics(t, srv.URL+"/metrics") }, map[string]float64{
		"reprise_retention_purged_total status Completed": 3,
	})
}

// TestMetricsNonDeterministicFailure: an instance failed without running its orchestrator (its
// code no longer matches its history) is counted as a completion with status Failed.
func TestMetricsNonDeterministicFailure(t *testing.T) {
	var changed atomic.Bool
	release := make(chan struct{})
	gate := reprise.NewActivity("gate", func(ctx context.Context, _ reprise.None) (string, error) {
		select {
		case <-release:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	other := reprise.NewActivity("other", func(ctx context.Context, _ reprise.None) (string, error) { return "", nil })
	fickle := reprise.NewOrchestrator("fickle", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		act := gate
		if changed.Load() { // a replay schedules another activity than the history has
			act = other
		}
		return act.Call(ctx, reprise.None{}).Await()
	})
	// No cache: the episode that delivers gate's result replays the history.
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(), reprise.WithCacheSize(-1))...)
	app.Register(gate, other, fickle)
	srv := hosttest.Serve(t, app)
	ctx := testCtx(t)
	id, err := fickle.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	waitForHistory(t, app.Client(), id, "TaskScheduled", 1)
	changed.Store(true)
	close(release)
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusFailed {
		t.Fatalf("status %s, want Failed", inst.Status)
	}
	waitMetrics(t, func() scrape { return getMetrics(t, srv.URL+"/metrics") }, map[string]float64{
		"reprise_orchestrations_completed_total name fickle status Failed": 1,
		"reprise_orchestrations_started_total":                             1,
	})
}
