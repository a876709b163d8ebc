package reprise_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// noRedirects is a client that reports redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func checkSecurityHeaders(t *testing.T, r hosttest.Response) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s %s: %s = %q, want %q", r.Request.Method, r.Request.URL.Path, k, got, v)
		}
	}
}

// TestDashboardAuth: the shell is public; the data needs the master key (not the system key, not
// a host key), by header or code; GET /dashboard redirects to /dashboard/.
func TestDashboardAuth(t *testing.T) {
	keys := reprise.Keys{Master: "master-1", Host: []string{"host-1"}, System: "system-1"}
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(keys))...)
	app.Register(sayHello, helloSequence)
	srv := hosttest.Serve(t, app)

	for _, path := range []string{"/dashboard/", "/dashboard/app.js", "/dashboard/style.css"} {
		r := hosttest.Do(t, "GET", srv.URL+path, nil)
		if r.StatusCode != http.StatusOK || len(r.Body) == 0 {
			t.Errorf("GET %s without a key: %d, want 200 (the shell has no data)", path, r.StatusCode)
		}
		checkSecurityHeaders(t, r)
	}
	if r := hosttest.Do(t, "GET", srv.URL+"/dashboard/", nil); !strings.Contains(string(r.Body), `<script type="module" src="app.js">`) {
		t.Errorf("the shell does not load app.js: %s", r.Body)
	}

	info := srv.URL + "/dashboard/api/info"
	for _, c := range []struct {
		name   string
		header []string
		url    string
		want   int
	}{
		{"no key", nil, info, http.StatusUnauthorized},
		{"system key", []string{"x-functions-key", "system-1"}, info, http.StatusUnauthorized},
		{"host key", []string{"x-functions-key", "host-1"}, info, http.StatusUnauthorized},
		{"wrong key", []string{"x-functions-key", "master-2"}, info, http.StatusUnauthorized},
		{"master key header", []string{"x-functions-key", "master-1"}, info, http.StatusOK},
		{"master key code", nil, info + "?code=master-1", http.StatusOK},
	} {
		r := hosttest.Do(t, "GET", c.url, nil, c.header...)
		if r.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.StatusCode, r.Body, c.want)
		}
		checkSecurityHeaders(t, r)
		if c.want == http.StatusUnauthorized {
			var body struct{ Message string }
			r.JSON(t, &body)
			if !strings.Contains(body.Message, "master key") {
				t.Errorf("%s: 401 message %q does not say what is needed", c.name, body.Message)
			}
		}
	}
	var got struct {
		Hub           string
		Orchestrators []string
		Anonymous     bool
	}
	hosttest.Do(t, "GET", info, nil, "x-functions-key", "master-1").JSON(t, &got)
	if got.Hub != "default" || got.Anonymous || !slices.Equal(got.Orchestrators, []string{"hello_sequence_orchestrator"}) {
		t.Errorf("info %+v", got)
	}

	// The page calls the management API with the master key.
	if r := hosttest.Do(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances", nil, "x-functions-key", "master-1"); r.StatusCode != http.StatusOK {
		t.Errorf("management API with the master key: %d", r.StatusCode)
	}

	resp, err := noRedirects.Get(srv.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/dashboard/" {
		t.Errorf("GET /dashboard: %d Location %q, want 302 to /dashboard/", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/dashboard/api/info", nil)
	req.Header.Set("x-functions-key", "master-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the dashboard: %d, want 405", resp.StatusCode)
	}
}

func TestDashboardAnonymous(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	srv := hosttest.Serve(t, app)
	r := hosttest.Do(t, "GET", srv.URL+"/dashboard/api/info", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("anonymous info: %d %s", r.StatusCode, r.Body)
	}
	var info struct{ Anonymous bool }
	r.JSON(t, &info)
	if !info.Anonymous {
		t.Error("info does not say the dashboard is anonymous")
	}
	if r := hosttest.Do(t, "GET", srv.URL+"/dashboard/api/instances", nil); r.StatusCode != http.StatusOK {
		t.Errorf("anonymous list: %d", r.StatusCode)
	}
}

func TestDashboardBeforeStartAndAfterShutdown(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{Master: "m"}))...)
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	check := func(when string) {
		t.Helper()
		for _, path := range []string{"/dashboard/", "/dashboard/api/info"} {
			r := hosttest.Do(t, "GET", srv.URL+path, nil, "x-functions-key", "m")
			if r.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s: GET %s: %d, want 503", when, path, r.StatusCode)
			}
			checkSecurityHeaders(t, r)
		}
	}
	check("before Start")
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := hosttest.Do(t, "GET", srv.URL+"/dashboard/api/info", nil, "x-functions-key", "m"); r.StatusCode != http.StatusOK {
		t.Errorf("after Start: %d", r.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	check("after Shutdown")
}

// TestDashboardDataOnTheStore runs the dashboard's API over a real App: name filter, counts,
// paging, and an instance's timeline.
func TestDashboardDataOnTheStore(t *testing.T) {
	approval := reprise.NewOrchestrator("Approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.WaitForEvent[string](ctx, "ok", 0).Await()
	})
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(sayHello, helloSequence, approval)
	srv := hosttest.Serve(t, app)
	c := app.Client()
	for _, id := range []string{"h1", "h2", "h3"} {
		if _, err := helloSequence.Start(testCtx(t), c, reprise.None{}, reprise.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
		hosttest.WaitDone(t, app, id)
	}
	if _, err := approval.Start(testCtx(t), c, reprise.None{}, reprise.WithInstanceID("a1")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "a1", reprise.StatusRunning)
	api := srv.URL + "/dashboard/api/"

	var info struct{ Orchestrators []string }
	hosttest.Do(t, "GET", api+"info", nil).JSON(t, &info)
	if !slices.Equal(info.Orchestrators, []string{"Approval", "hello_sequence_orchestrator"}) {
		t.Errorf("orchestrators %v: registered names, case kept", info.Orchestrators)
	}

	type page struct {
		Instances []struct{ ID, Name, Status, CreatedAt string }
		Next      string
	}
	var p page
	hosttest.Do(t, "GET", api+"instances?name=Approval", nil).JSON(t, &p)
	if len(p.Instances) != 1 || p.Instances[0].ID != "a1" || p.Instances[0].Status != "Running" || p.Next != "" {
		t.Errorf("name filter: %+v", p)
	}
	hosttest.Do(t, "GET", api+"instances?name=hello_sequence_orchestrator&top=2", nil).JSON(t, &p)
	if len(p.Instances) != 2 || p.Next == "" {
		t.Fatalf("first page: %+v", p)
	}
	first := p.Instances[0].ID
	hosttest.Do(t, "GET", api+"instances?name=hello_sequence_orchestrator&top=2&token="+p.Next, nil).JSON(t, &p)
	if len(p.Instances) != 1 || p.Instances[0].ID == first || p.Next != "" {
		t.Errorf("second page: %+v", p)
	}
	if r := hosttest.Do(t, "GET", api+"instances?token=not-a-token", nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("bad token: %d %s, want 400", r.StatusCode, r.Body)
	}

	var counts struct {
		Counts map[string]int
		Total  int
	}
	hosttest.Do(t, "GET", api+"counts?status=Failed", nil).JSON(t, &counts)
	if counts.Total != 4 || counts.Counts["Completed"] != 3 || counts.Counts["Running"] != 1 || counts.Counts["Failed"] != 0 {
		t.Errorf("counts %+v", counts)
	}
	hosttest.Do(t, "GET", api+"counts?prefix=h", nil).JSON(t, &counts)
	if counts.Total != 3 {
		t.Errorf("counts with prefix h: %+v", counts)
	}

	var d struct {
		Status   string
		Output   json.RawMessage
		Timeline struct {
			End   string
			Spans []struct{ Kind, Name, State string }
		}
		History []map[string]any
	}
	hosttest.Do(t, "GET", api+"instances/h1", nil).JSON(t, &d)
	if d.Status != "Completed" || len(d.Timeline.Spans) != 3 || d.Timeline.End == "" || len(d.History) == 0 {
		t.Errorf("detail: %+v", d)
	}
	for _, s := range d.Timeline.Spans {
		if s.Kind != "activity" || s.Name != "say_hello" || s.State != "completed" {
			t.Errorf("span %+v", s)
		}
	}
	if r := hosttest.Do(t, "GET", api+"instances/nope", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown instance: %d", r.StatusCode)
	}
}

// TestDashboardURLIsLogged: Serve logs where the dashboard is, once.
func TestDashboardURLIsLogged(t *testing.T) {
	logs := &logBuffer{}
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "log.db")),
		reprise.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), reprise.WithKeys(reprise.Keys{Master: "m"}))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Serve logs, then shuts down at once
	if err := app.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
	want := "dashboard at http://" + ln.Addr().String() + "/dashboard/"
	n := 0
	for _, rec := range logs.records(t) {
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "dashboard at") {
			n++
			if msg != want || rec["auth"] != "master key" {
				t.Errorf("log record %v, want msg %q with auth \"master key\"", rec, want)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d dashboard log records, want 1", n)
	}
}

// TestDashboardNamesTimeoutTimers: the timer of WaitForEvent with a timeout is shown as that
// event's timeout, in the timeline and the history table: canceled when the event came first,
// completed when the timeout fired.
func TestDashboardNamesTimeoutTimers(t *testing.T) {
	approval := reprise.NewOrchestrator("approval_with_timeout", func(ctx *reprise.OrchestrationContext, wait time.Duration) (string, error) {
		v, err := reprise.WaitForEvent[string](ctx, "Approve", wait).Await()
		if errors.Is(err, reprise.ErrTimeout) {
			return "timed out", nil
		}
		return v, err
	})
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(approval)
	srv := hosttest.Serve(t, app)
	c := app.Client()
	if _, err := approval.Start(testCtx(t), c, time.Hour, reprise.WithInstanceID("answered")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "answered", reprise.StatusRunning)
	if err := c.RaiseEvent(testCtx(t), "answered", "Approve", "yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := approval.Start(testCtx(t), c, time.Millisecond, reprise.WithInstanceID("unanswered")); err != nil {
		t.Fatal(err)
	}
	type detail struct {
		Timeline struct {
			Spans []struct{ Kind, Name, State, TimeoutOf string }
		}
		Events []struct{ Type, Name, TimeoutOf string }
	}
	for id, state := range map[string]string{"answered": "canceled", "unanswered": "completed"} {
		hosttest.WaitDone(t, app, id)
		var d detail
		hosttest.Do(t, "GET", srv.URL+"/dashboard/api/instances/"+id, nil).JSON(t, &d)
		if len(d.Timeline.Spans) != 1 {
			t.Fatalf("%s: spans %+v, want the timeout timer", id, d.Timeline.Spans)
		}
		if s := d.Timeline.Spans[0]; s.Kind != "timer" || s.TimeoutOf != "Approve" || s.Name != "timeout of Approve" || s.State != state {
			t.Errorf("%s: timer span %+v, want the timeout of Approve, %s", id, s, state)
		}
		var created bool
		for _, e := range d.Events {
			if e.Type == "TimerCreated" {
				created = e.TimeoutOf == "Approve" && e.Name == "timeout of Approve"
			}
		}
		if !created {
			t.Errorf("%s: history rows %+v, want a TimerCreated naming the timeout of Approve", id, d.Events)
		}
	}
}
