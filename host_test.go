package reprise_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// TestAuthLevels checks every auth level with the key in the code query parameter, in the
// x-functions-key header, wrong, and missing.
func TestAuthLevels(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{
		Master:    "master-key",
		Host:      []string{"host-key-1", "host-key-2"},
		System:    "system-key",
		Functions: map[string][]string{"orders": {"orders-key"}},
	}))...)
	app.HandleFunc("GET /api/anon", ok, reprise.AuthAnonymous)
	app.HandleFunc("GET /api/orders", ok, reprise.FunctionName("orders"))
	app.HandleFunc("GET /api/other", ok) // AuthFunction by default
	app.HandleFunc("GET /api/admin", ok, reprise.AuthAdmin)
	srv := hosttest.Serve(t, app)

	cases := []struct {
		path, key string
		header    bool
		want      int
	}{
		{"/api/anon", "", false, 200},
		{"/api/anon", "wrong", false, 200},
		{"/api/orders", "", false, 401},
		{"/api/orders", "wrong", false, 401},
		{"/api/orders", "orders-key", false, 200},
		{"/api/orders", "orders-key", true, 200},
		{"/api/orders", "host-key-2", false, 200},
		{"/api/orders", "master-key", true, 200},
		{"/api/orders", "system-key", false, 401}, // the system key is for the management API only
		{"/api/other", "orders-key", false, 401},  // a function key opens its own function only
		{"/api/other", "host-key-1", true, 200},
		{"/api/admin", "host-key-1", false, 401},
		{"/api/admin", "master-key", false, 200},
		{"/api/admin", "master-key", true, 200},
	}
	for _, c := range cases {
		u := srv.URL + c.path
		var hdr []string
		if c.header {
			hdr = []string{"x-functions-key", c.key}
		} else if c.key != "" {
			u += "?code=" + url.QueryEscape(c.key)
		}
		resp := hosttest.Do(t, "GET", u, nil, hdr...)
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with key %q (header %v): %d, want %d", c.path, c.key, c.header, resp.StatusCode, c.want)
		}
		if c.want == 401 && !strings.Contains(string(resp.Body), "x-functions-key") {
			t.Errorf("GET %s: 401 body %q does not say how to pass a key", c.path, resp.Body)
		}
	}
}

func TestManagementAPIRequiresTheSystemOrMasterKey(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t),
		reprise.WithKeys(reprise.Keys{Master: "master-key", System: "system-key", Host: []string{"host-key"}}))...)
	app.Register(sayHello, helloSequence)
	srv := hosttest.Serve(t, app)
	list := srv.URL + "/runtime/webhooks/durabletask/instances"
	for key, want := range map[string]int{"": 401, "host-key": 401, "wrong": 401, "system-key": 200, "master-key": 200} {
		if got := hosttest.Do(t, "GET", list, nil, "x-functions-key", key).StatusCode; got != want {
			t.Errorf("list instances with key %q: %d, want %d", key, got, want)
		}
	}
	// The check-status URLs carry the system key, so that callers can follow them as they are.
	start := hosttest.Do(t, "POST", srv.URL+"/runtime/webhooks/durabletask/orchestrators/hello_sequence_orchestrator?code=system-key", nil)
	if start.StatusCode != http.StatusAccepted {
		t.Fatalf("start: %d %s", start.StatusCode, start.Body)
	}
	var urls reprise.ManagementURLs
	start.JSON(t, &urls)
	if !strings.Contains(urls.StatusQueryGetURI, "code=system-key") {
		t.Fatalf("statusQueryGetUri %q does not carry the system key", urls.StatusQueryGetURI)
	}
	hosttest.WaitDone(t, app, urls.ID)
	if got := hosttest.Do(t, "GET", urls.StatusQueryGetURI, nil); got.StatusCode != http.StatusOK {
		t.Fatalf("GET statusQueryGetUri: %d %s", got.StatusCode, got.Body)
	}
}

// TestGeneratedSystemKey: with no system key configured, the App makes one up; the URLs it hands
// out work and a request without them does not.
func TestGeneratedSystemKey(t *testing.T) {
	app := reprise.NewApp(hosttest.Options(t)...)
	app.Register(sayHello, helloSequence)
	handleStartHello(app)
	srv := hosttest.Serve(t, app)
	start := hosttest.Do(t, "POST", srv.URL+"/api/start", nil)
	var urls reprise.ManagementURLs
	start.JSON(t, &urls)
	u, err := url.Parse(urls.StatusQueryGetURI)
	if err != nil || len(u.Query().Get("code")) < 32 {
		t.Fatalf("statusQueryGetUri %q carries no generated key", urls.StatusQueryGetURI)
	}
	hosttest.WaitDone(t, app, urls.ID)
	if got := hosttest.Do(t, "GET", urls.StatusQueryGetURI, nil).StatusCode; got != http.StatusOK {
		t.Errorf("GET statusQueryGetUri: %d, want 200", got)
	}
	u.RawQuery = ""
	if got := hosttest.Do(t, "GET", u.String(), nil).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("GET status without the key: %d, want 401", got)
	}
	mu, err := app.Client().ManagementURLs(start.Request, urls.ID)
	if err != nil || mu.StatusQueryGetURI != urls.StatusQueryGetURI || mu.RewindPostURI == "" {
		t.Errorf("Client.ManagementURLs = %+v, %v; want the same URLs as the response, with rewindPostUri", mu, err)
	}
}

func TestAnonymousManagement(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	srv := hosttest.Serve(t, app)
	if got := hosttest.Do(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances", nil).StatusCode; got != 200 {
		t.Fatalf("anonymous list: %d, want 200", got)
	}
	// The code has the last word (decision 0010): the environment cannot close what it opened...
	t.Setenv("REPRISE_MANAGEMENT_AUTH", "system")
	t.Setenv("REPRISE_SYSTEM_KEY", "from-env")
	app2 := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	srv2 := hosttest.Serve(t, app2)
	if got := hosttest.Do(t, "GET", srv2.URL+"/runtime/webhooks/durabletask/instances", nil).StatusCode; got != 200 {
		t.Errorf("list with WithAnonymousManagement, REPRISE_MANAGEMENT_AUTH=system and no key: %d, want 200", got)
	}
	// ...but fills in what the code left open.
	app3 := reprise.NewApp(hosttest.Options(t)...)
	srv3 := hosttest.Serve(t, app3)
	if got := hosttest.Do(t, "GET", srv3.URL+"/runtime/webhooks/durabletask/instances", nil).StatusCode; got != 401 {
		t.Errorf("list with REPRISE_MANAGEMENT_AUTH=system and no key: %d, want 401", got)
	}
	if got := hosttest.Do(t, "GET", srv3.URL+"/runtime/webhooks/durabletask/instances?code=from-env", nil).StatusCode; got != 200 {
		t.Errorf("list with the key from REPRISE_SYSTEM_KEY: %d, want 200", got)
	}
}

func TestRoutesBeforeStartAnswer503(t *testing.T) {
	app := reprise.NewApp(hosttest.Options(t)...)
	app.HandleFunc("GET /api/x", ok, reprise.AuthAnonymous)
	for _, path := range []string{"/api/x", "/runtime/webhooks/durabletask/instances"} {
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not running") {
			t.Errorf("GET %s before Start: %d %s, want 503 saying the app is not running", path, rec.Code, rec.Body.String())
		}
	}
}

func TestUserRouteBodyLimit(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithMaxRequestBody(16))...)
	app.HandleFunc("POST /api/echo", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write(data)
	}, reprise.AuthAnonymous)
	srv := hosttest.Serve(t, app)
	if got := hosttest.Do(t, "POST", srv.URL+"/api/echo", []byte("small")); string(got.Body) != "small" {
		t.Errorf("small body: %d %q", got.StatusCode, got.Body)
	}
	if got := hosttest.Do(t, "POST", srv.URL+"/api/echo", bytes.Repeat([]byte("x"), 17)); got.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("17-byte body with a 16-byte limit: %d, want 413", got.StatusCode)
	}
}

// TestServeShutsDownWhenTheContextEnds: Serve runs the app until its context ends, then stops
// the server and the App; an instance started before keeps its result in the store.
func TestServeShutsDownWhenTheContextEnds(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "serve.db")
	app := reprise.NewApp(reprise.WithSQLiteFile(dbPath), reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithAnonymousManagement())
	app.Register(sayHello, helloSequence)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	start := hosttest.Do(t, "POST", base+"/runtime/webhooks/durabletask/orchestrators/hello_sequence_orchestrator/served-1", nil)
	if start.StatusCode != http.StatusAccepted {
		t.Fatalf("start: %d %s", start.StatusCode, start.Body)
	}
	hosttest.WaitDone(t, app, "served-1")
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after its context ended, want nil", err)
	}
	if _, err := http.Get(base + "/runtime/webhooks/durabletask/instances"); err == nil {
		t.Error("the server still answers after Serve returned")
	}
	if _, err := app.Client().GetInstance(context.Background(), "served-1"); !errors.Is(err, reprise.ErrNotStarted) {
		t.Errorf("client after Serve returned: %v, want ErrNotStarted (the App is shut down)", err)
	}
}

// TestLifecycleLogs: each orchestration and activity start and end is logged once, with the
// instance ID, the name and (at the end) the latency, even when every episode replays.
func TestLifecycleLogs(t *testing.T) {
	logs := &logBuffer{}
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "logs.db")),
		reprise.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), reprise.WithCacheSize(0))
	app.Register(sayHello, helloSequence)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := app.Client()
	const n = 5
	for i := range n {
		id := "log-" + string(rune('a'+i))
		if _, err := helloSequence.Start(testCtx(t), c, reprise.None{}, reprise.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
		waitDone(t, c, id)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Shutdown(shutdown); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, rec := range logs.records(t) {
		msg, _ := rec["msg"].(string)
		counts[msg]++
		switch msg {
		case "orchestration started", "orchestration completed", "activity started", "activity completed":
			if id, _ := rec["instanceId"].(string); !strings.HasPrefix(id, "log-") {
				t.Errorf("%q record without the instance ID: %v", msg, rec)
			}
			if rec["name"] == nil {
				t.Errorf("%q record without the name: %v", msg, rec)
			}
		}
		if msg == "orchestration completed" || msg == "activity completed" {
			if _, ok := rec["latency"]; !ok {
				t.Errorf("%q record without the latency: %v", msg, rec)
			}
		}
	}
	want := map[string]int{"orchestration started": n, "orchestration completed": n, "activity started": 3 * n, "activity completed": 3 * n}
	for msg, w := range want {
		if counts[msg] != w {
			t.Errorf("%d %q records, want %d (all: %v)", counts[msg], msg, w, counts)
		}
	}
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) records(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, rec)
	}
	return out
}

// TestConfiguration: host.json and the environment configure the App, the environment winning
// over host.json (options win over both: TestConfigurationPrecedence);
// an invalid setting stops Start with an error naming it.
func TestConfiguration(t *testing.T) {
	dir := t.TempDir()
	hostJSON := filepath.Join(dir, "host.json")
	write := func(s string) {
		if err := os.WriteFile(hostJSON, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func(opts ...reprise.Option) (*reprise.App, error) {
		app := reprise.NewApp(append([]reprise.Option{reprise.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
		app.Register(sayHello, helloSequence)
		err := app.Start(context.Background())
		if err == nil {
			t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
		}
		return app, err
	}
	t.Setenv("REPRISE_HOST_JSON", hostJSON)
	write(`{"version":"2.0","extensions":{"durableTask":{"hubName":"FromHostJson","maxConcurrentActivityFunctions":8,
		"storageProvider":{"type":"sqlite","file":"` + filepath.Join(dir, "fromhost.db") + `"},"extendedSessionsEnabled":true}}}`)
	app, err := start()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fromhost.db")); err != nil {
		t.Errorf("storageProvider.file was not used: %v", err)
	}
	id, err := helloSequence.Start(testCtx(t), app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Errorf("status %s", inst.Status)
	}

	t.Setenv("REPRISE_STORE", filepath.Join(dir, "fromenv.db"))
	t.Setenv("REPRISE_HUB", "FromEnv")
	if _, err := start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fromenv.db")); err != nil {
		t.Errorf("REPRISE_STORE did not win over host.json: %v", err)
	}

	bad := []struct {
		setting, value, hostJSON string
	}{
		{"REPRISE_MAX_CONCURRENT_ACTIVITIES", "lots", ""},
		{"REPRISE_MAX_CONCURRENT_ORCHESTRATIONS", "0", ""},
		{"REPRISE_HUB", "no spaces please", ""},
		{"REPRISE_MANAGEMENT_AUTH", "maybe", ""},
		{"REPRISE_MAX_REQUEST_BODY", "-1", ""},
		{"REPRISE_LOG_LEVEL", "loud", ""},
		{"REPRISE_ADDR", "7071", ""},
		{"maxConcurrentOrchestratorFunctions", "", `{"extensions":{"durableTask":{"maxConcurrentOrchestratorFunctions":-3}}}`},
		{"storageProvider.type", "", `{"extensions":{"durableTask":{"storageProvider":{"type":"AzureStorage2"}}}}`},
		{"host.json", "", `{"extensions":`},
	}
	for _, b := range bad {
		t.Run(b.setting, func(t *testing.T) {
			write(`{}`)
			if b.hostJSON != "" {
				write(b.hostJSON)
				t.Setenv("REPRISE_HUB", "")
			} else {
				t.Setenv(b.setting, b.value)
			}
			_, err := start(reprise.WithLogger(nil))
			if err == nil || !strings.Contains(err.Error(), b.setting) {
				t.Fatalf("Start with %s=%q: %v, want an error naming %s", b.setting, b.value, err, b.setting)
			}
		})
	}
}

// TestManagementAPIOnTheEngine checks the status codes that depend on the App's errors, with the
// real engine and store behind the API.
func TestManagementAPIOnTheEngine(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(sayHello, helloSequence, approval)
	srv := hosttest.Serve(t, app)
	base := srv.URL + "/runtime/webhooks/durabletask"
	expect := func(method, path string, body []byte, want int, header ...string) hosttest.Response {
		t.Helper()
		resp := hosttest.Do(t, method, base+path, body, header...)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, resp.Body, want)
		}
		return resp
	}

	// Wait mode: a sequence completes within the timeout, so the answer is its output.
	out := expect("POST", "/orchestrators/hello_sequence_orchestrator/done-1?timeout=30&pollingInterval=1", nil, 200)
	if string(out.Body) != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Errorf("wait mode body %s, want the output", out.Body)
	}
	// An instance waiting (an hour at most) for two events: still running at the timeout, so 202.
	expect("POST", "/orchestrators/approval/wait-1?timeout=0.2&pollingInterval=0.1", []byte(`3600000000000`), 202)
	expect("POST", "/orchestrators/approval/wait-1", []byte(`3600000000000`), 409)
	expect("POST", "/orchestrators/nobody", nil, 400)
	expect("POST", "/orchestrators/hello_sequence_orchestrator/@entity", nil, 400)
	expect("DELETE", "/instances/wait-1", nil, 409)
	expect("POST", "/instances/wait-1/rewind", nil, 412)
	expect("POST", "/instances/done-1/rewind", nil, 410)
	expect("POST", "/instances/done-1/terminate", nil, 410)
	expect("POST", "/instances/done-1/raiseEvent/approval", []byte(`true`), 410, "Content-Type", "application/json")
	expect("POST", "/instances/nobody/raiseEvent/approval", []byte(`true`), 404, "Content-Type", "application/json")
	page := expect("GET", "/instances?top=1", nil, 200)
	next := page.Header.Get("x-ms-continuation-token")
	if next == "" {
		t.Fatal("the first page of two instances, one per page, has no continuation token")
	}
	last := expect("GET", "/instances?top=1", nil, 200, "x-ms-continuation-token", next)
	if tok, ok := last.Header["X-Ms-Continuation-Token"]; !ok || tok[0] != "" {
		t.Errorf("last page: continuation header %q (present %v), want present and empty", tok, ok)
	}
	expect("GET", "/instances?top=5", nil, 400, "x-ms-continuation-token", "garbage!")

	// Suspend, resume, then the event completes the instance.
	expect("POST", "/instances/wait-1/suspend?reason=pause", nil, 202)
	expect("POST", "/instances/wait-1/resume?reason=go", nil, 202)
	for _, v := range []string{`"yes"`, `"and yes"`} {
		expect("POST", "/instances/wait-1/raiseEvent/Approve", []byte(v), 202, "Content-Type", "application/json")
	}
	if inst := hosttest.WaitDone(t, app, "wait-1"); inst.Status != reprise.StatusCompleted || string(inst.Output) != `["yes","and yes"]` {
		t.Fatalf("wait-1 ended %s (%s), want Completed", inst.Status, inst.Output)
	}
	expect("DELETE", "/instances/wait-1", nil, 200)
	expect("GET", "/instances/wait-1", nil, 404)
}

// TestListenAndServeAddressInUse: a taken address stops ListenAndServe with an error that says
// which address and how to choose another, and leaves the App shut down.
func TestListenAndServeAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAddr(taken.Addr().String()))...)
	err = app.ListenAndServe(context.Background())
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "REPRISE_ADDR") {
		t.Fatalf("ListenAndServe on a taken address: %v, want an error naming it and REPRISE_ADDR", err)
	}
	if _, _, err := app.Client().ListInstances(context.Background(), reprise.Query{}); !errors.Is(err, reprise.ErrNotStarted) {
		t.Errorf("client after the failed ListenAndServe: %v, want ErrNotStarted", err)
	}
}

// TestGeneratedKeysSurviveARestart: a host with no keys configured (the README's sample) keeps
// the keys it generated in its store, so a status URL handed out before a restart still works
// after one, on the same store, and ReadGeneratedKeys (`reprise keys`) prints the same keys.
func TestGeneratedKeysSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "restart.db")
	newApp := func() *reprise.App {
		app := reprise.NewApp(reprise.WithSQLiteFile(path), reprise.WithLogger(slog.New(slog.DiscardHandler)))
		app.Register(sayHello, helloSequence)
		handleStartHello(app)
		return app
	}
	first := newApp()
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(first.Handler())
	var urls reprise.ManagementURLs
	hosttest.Do(t, "POST", srv.URL+"/api/start", nil).JSON(t, &urls)
	hosttest.WaitDone(t, first, urls.ID)
	srv.Close()
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	second := newApp()
	srv2 := hosttest.Serve(t, second)
	status := strings.Replace(urls.StatusQueryGetURI, srv.URL, srv2.URL, 1)
	if got := hosttest.Do(t, "GET", status, nil); got.StatusCode != http.StatusOK {
		t.Fatalf("GET the status URL handed out before the restart: %d %s, want 200", got.StatusCode, got.Body)
	}
	u, err := url.Parse(status)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := reprise.ReadGeneratedKeys(context.Background(), reprise.WithSQLiteFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if keys.System != u.Query().Get("code") || len(keys.Master) < 32 || keys.Hub != "default" || keys.Store != "sqlite:"+path {
		t.Fatalf("ReadGeneratedKeys = %+v; want the system key of the URLs (%s) and a master key", keys, u.Query().Get("code"))
	}
	if got := hosttest.Do(t, "GET", srv2.URL+"/dashboard/api/info", nil, "x-functions-key", keys.Master); got.StatusCode != http.StatusOK {
		t.Errorf("the dashboard with the generated master key: %d %s", got.StatusCode, got.Body)
	}
	r := hosttest.Do(t, "GET", srv2.URL+"/dashboard/api/info", nil)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(string(r.Body), "reprise keys") {
		t.Errorf("the dashboard without a key: %d %s; want 401 saying how to print the key", r.StatusCode, r.Body)
	}
	if _, err := reprise.ReadGeneratedKeys(context.Background(), reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "nope.db"))); err == nil ||
		!strings.Contains(err.Error(), "no SQLite store") {
		t.Errorf("ReadGeneratedKeys of a missing file: %v, want an error saying there is no store", err)
	}
}

// TestStoreGivenInCodeIsUsed: REPRISE_STORE fills in a store the code left open; it does not
// redirect a host whose code names its store (the test suite's, `reprise bench --store`'s).
func TestStoreGivenInCodeIsUsed(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REPRISE_STORE", filepath.Join(dir, "env.db"))
	t.Setenv("REPRISE_HUB", "EnvHub")
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(dir, "code.db")), reprise.WithHub("CodeHub"),
		reprise.WithLogger(slog.New(slog.DiscardHandler)))
	srv := hosttest.Serve(t, app)
	if _, err := os.Stat(filepath.Join(dir, "code.db")); err != nil {
		t.Errorf("the store given in code is unused: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "env.db")); err == nil {
		t.Error("REPRISE_STORE was opened although the code names the store")
	}
	if got := hosttest.Do(t, "GET", srv.URL+"/durabletask/instances?taskHub=CodeHub", nil).StatusCode; got != http.StatusOK {
		t.Errorf("the hub given in code: %d, want 200", got)
	}
}

// handleStartHello adds an anonymous route POST /api/start that starts helloSequence and answers
// with the check-status response (the URLs a caller polls, signed with the system key).
func handleStartHello(app *reprise.App) {
	app.HandleFunc("POST /api/start", func(w http.ResponseWriter, r *http.Request) {
		id, err := helloSequence.Start(r.Context(), app.Client(), reprise.None{})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}, reprise.AuthAnonymous)
}
