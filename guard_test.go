package reprise_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// send is one request with hostile headers; "Host" sets the Host header the server sees.
func send(t *testing.T, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// startInstance is an anonymous user route, the HTTP starter of the examples.
func startInstance(app *reprise.App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := app.Client().StartNew(r.Context(), "hello_sequence_orchestrator", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}
}

func instanceCount(t *testing.T, app *reprise.App) int {
	t.Helper()
	page, _, err := app.Client().ListInstances(context.Background(), reprise.Query{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(page)
}

// TestKeylessRoutesRefuseForeignHosts: DNS rebinding. A page of attacker.example that re-points
// its name at 127.0.0.1 sends Host: attacker.example; every route that opens without a key
// refuses it (the RPC base, the anonymous management API and dashboard, anonymous user routes
// on loopback), while loopback names and allowed hosts pass.
func TestKeylessRoutesRefuseForeignHosts(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(), reprise.WithAllowedHosts("devbox.lan"))...)
	app.Register(sayHello, helloSequence)
	app.HandleFunc("GET /api/anon", ok, reprise.AuthAnonymous)
	srv := hosttest.Serve(t, app)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	paths := []string{"/durabletask/instances", "/runtime/webhooks/durabletask/instances", "/dashboard/api/info", "/dashboard/", "/api/anon"}
	for _, path := range paths {
		for _, host := range []string{"attacker.example", "attacker.example:" + port, "127.0.0.1.attacker.example:" + port, "localhost.attacker.example", "192.0.2.9:" + port, "[fe80::1]:" + port} {
			code, body := send(t, "GET", srv.URL+path, "", "Host", host)
			if code != http.StatusForbidden || !strings.Contains(body, "loopback name") || !strings.Contains(body, "REPRISE_ALLOWED_HOSTS") {
				t.Errorf("GET %s with Host %s: %d %s, want 403 saying to use a loopback name or REPRISE_ALLOWED_HOSTS", path, host, code, body)
			}
		}
		for _, host := range []string{"localhost:" + port, "LocalHost", "127.0.0.1:" + port, "127.9.8.7:" + port, "[::1]:" + port, "devbox.lan:" + port, "DEVBOX.LAN"} {
			if code, body := send(t, "GET", srv.URL+path, "", "Host", host); code != http.StatusOK {
				t.Errorf("GET %s with Host %s: %d %s, want 200", path, host, code, body)
			}
		}
	}
}

// TestAnonymousStarterDoesNotLeakTheSystemKey: on a host whose management API is keyed, an
// anonymous starter's check-status body carries the system key; a rebound page must not read it.
func TestAnonymousStarterDoesNotLeakTheSystemKey(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{System: "the-system-key"}))...)
	app.Register(sayHello, helloSequence)
	app.HandleFunc("POST /api/start", startInstance(app), reprise.AuthAnonymous)
	srv := hosttest.Serve(t, app)
	code, body := send(t, "POST", srv.URL+"/api/start", "", "Host", "attacker.example")
	if code != http.StatusForbidden || strings.Contains(body, "the-system-key") {
		t.Fatalf("rebound POST /api/start: %d %s, want 403 without the system key", code, body)
	}
	if n := instanceCount(t, app); n != 0 {
		t.Errorf("the refused request started %d instances", n)
	}
	if code, body := send(t, "POST", srv.URL+"/api/start", ""); code != http.StatusAccepted || !strings.Contains(body, "code=the-system-key") {
		t.Errorf("local POST /api/start: %d %s, want 202 with the keyed URLs", code, body)
	}
	// The keyed management API is not the guard's business: the key is what protects it.
	if code, _ := send(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances?code=the-system-key", "", "Host", "reprise.example.com"); code != http.StatusOK {
		t.Errorf("keyed list with a public Host: %d, want 200", code)
	}
}

// TestKeylessRoutesRefuseCrossSiteWrites: CSRF. A page of another site can POST text/plain
// without a preflight; state-changing requests it sends are refused, and nothing starts.
// Non-browser clients (no Origin, no Sec-Fetch-Site), same-origin pages and local pages pass.
func TestKeylessRoutesRefuseCrossSiteWrites(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(sayHello, helloSequence)
	app.HandleFunc("POST /api/start", startInstance(app), reprise.AuthAnonymous)
	srv := hosttest.Serve(t, app)
	targets := []string{"/durabletask/orchestrators/hello_sequence_orchestrator",
		"/runtime/webhooks/durabletask/orchestrators/hello_sequence_orchestrator", "/api/start"}
	for _, target := range targets {
		for _, hdr := range [][]string{
			{"Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://attacker.example"}, // a browser without Sec-Fetch-Site
			{"Origin", "null"},                     // a sandboxed frame or a file:// page
			{"Origin", "http://127.0.0.1.attacker.example", "Sec-Fetch-Site", "same-site"},
		} {
			code, body := send(t, "POST", srv.URL+target, `"x"`, append([]string{"Content-Type", "text/plain"}, hdr...)...)
			if code != http.StatusForbidden || !strings.Contains(body, "Refused a POST request from") {
				t.Errorf("POST %s with %v: %d %s, want 403 refusing the cross-site request", target, hdr, code, body)
			}
		}
	}
	if n := instanceCount(t, app); n != 0 {
		t.Fatalf("cross-site requests started %d instances", n)
	}
	started := 0
	for _, target := range targets {
		for _, hdr := range [][]string{
			nil, // curl, the CLI, the npm client
			{"Sec-Fetch-Site", "same-origin", "Origin", srv.URL},
			{"Sec-Fetch-Site", "none"},
			{"Origin", srv.URL},                                                // same origin, older browser
			{"Origin", "http://localhost:3000", "Sec-Fetch-Site", "same-site"}, // a local dev server's page
		} {
			if code, body := send(t, "POST", srv.URL+target, "", hdr...); code != http.StatusAccepted {
				t.Errorf("POST %s with %v: %d %s, want 202", target, hdr, code, body)
			}
			started++
		}
	}
	// Reads are not refused for their origin: the same-origin policy keeps their answers from the page.
	if code, _ := send(t, "GET", srv.URL+"/durabletask/instances", "", "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"); code != http.StatusOK {
		t.Errorf("cross-site GET: %d, want 200", code)
	}
	if n := instanceCount(t, app); n != started {
		t.Errorf("%d instances, want the %d accepted starts", n, started)
	}
}

// TestRPCBaseRefusesForwardedRequests: a proxy on this machine makes every caller look local;
// a request that carries forwarding headers is refused on the RPC base, whatever they claim.
func TestRPCBaseRefusesForwardedRequests(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{System: "k"}))...)
	srv := hosttest.Serve(t, app)
	for _, hdr := range [][]string{
		{"X-Forwarded-For", "203.0.113.7"},
		{"X-Forwarded-For", "127.0.0.1"},
		{"Forwarded", "for=127.0.0.1"},
		{"X-Real-Ip", "127.0.0.1"},
		{"X-Forwarded-Host", "localhost"},
	} {
		code, body := send(t, "GET", srv.URL+"/durabletask/instances", "", hdr...)
		if code != http.StatusForbidden || !strings.Contains(body, "came through a proxy") {
			t.Errorf("GET /durabletask/instances with %v: %d %s, want 403 naming the proxy", hdr, code, body)
		}
		// The keyed webhook base does not care.
		if code, _ := send(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances?code=k", "", hdr...); code != http.StatusOK {
			t.Errorf("keyed GET with %v: %d, want 200", hdr, code)
		}
	}
	if code, body := send(t, "GET", srv.URL+"/durabletask/instances", ""); code != http.StatusOK {
		t.Errorf("direct local GET: %d %s", code, body)
	}
}

func TestAllowedHostsFromTheEnvironment(t *testing.T) {
	t.Setenv("REPRISE_ALLOWED_HOSTS", "one.lan, two.lan")
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(), reprise.WithAllowedHosts("code.lan"))...)
	srv := hosttest.Serve(t, app)
	for host, want := range map[string]int{"one.lan": 200, "two.lan:80": 200, "code.lan": 200, "three.lan": 403} {
		if code, _ := send(t, "GET", srv.URL+"/durabletask/instances", "", "Host", host); code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
	}
	bad := reprise.NewApp(append(hosttest.Options(t), reprise.WithAllowedHosts("http://x.lan:80"))...)
	err := bad.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "REPRISE_ALLOWED_HOSTS") {
		t.Errorf("Start with an allowed host holding a scheme and port: %v, want an error naming the setting", err)
	}
}
