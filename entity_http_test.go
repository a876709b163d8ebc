package reprise_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store/postgres"
)

const (
	entityHTTPSystemKey = "entity-system-key"
	entityHTTPMasterKey = "entity-master-key"
)

// entityHTTP is a served App with the counter entity, and the calls of the entity tests.
type entityHTTP struct {
	t      *testing.T
	origin string
	app    *reprise.App
}

// serveEntityApp starts an App with the counter entity on the store of opts and serves its
// Handler on a loopback address.
func serveEntityApp(t *testing.T, opts ...reprise.Option) *entityHTTP {
	t.Helper()
	opts = append(opts, reprise.WithKeys(reprise.Keys{System: entityHTTPSystemKey, Master: entityHTTPMasterKey}))
	app := startApp(t, []reprise.Definition{counter, helloFromEntity}, opts...)
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	return &entityHTTP{t: t, origin: srv.URL, app: app}
}

// do sends a request under the webhook base with the key (code=) and returns the status, the
// headers and the body.
func (e *entityHTTP) do(method, path, key, contentType, body string, header ...string) (int, http.Header, string) {
	e.t.Helper()
	target := e.origin + "/runtime/webhooks/durabletask" + path
	if key != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		target += sep + "code=" + key
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// want sends a request and fails unless it gets the code; it returns the body.
func (e *entityHTTP) want(code int, method, path, contentType, body string) string {
	e.t.Helper()
	got, _, b := e.do(method, path, entityHTTPSystemKey, contentType, body)
	if got != code {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, code)
	}
	return b
}

// waitState polls GET entities/{name}/{key} until it answers 200 with the body want (compacted),
// or 404 when want is "".
func (e *entityHTTP) waitState(path, want string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var code int
	var body string
	for time.Now().Before(deadline) {
		code, _, body = e.do(http.MethodGet, path, entityHTTPSystemKey, "", "")
		if want == "" && code == http.StatusNotFound && body == "" || want != "" && code == http.StatusOK && strings.TrimSpace(body) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("GET %s: last answer %d %q, want %q", path, code, body, want)
}

// TestEntityHTTP drives the entity routes of the management API over a real App, on SQLite and
// on PostgreSQL (skipped when the server is unreachable).
func TestEntityHTTP(t *testing.T) {
	stores := map[string]func(t *testing.T) []reprise.Option{
		"sqlite": func(t *testing.T) []reprise.Option {
			return []reprise.Option{reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "test.db"))}
		},
		"postgres": func(t *testing.T) []reprise.Option {
			st, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{Hub: "entity_http", MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return []reprise.Option{reprise.WithStore(st)}
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			e := serveEntityApp(t, stores[name](t)...)
			t.Run("signals", e.testSignals)
			t.Run("inputs", e.testInputs)
			t.Run("list", e.testList)
			t.Run("delete and clean", e.testDeleteAndClean)
			t.Run("instance routes", e.testInstanceRoutes)
		})
	}
}

// testSignals: N signals give exactly N; the entity's detail shows its last operations.
func (e *entityHTTP) testSignals(t *testing.T) {
	e.t = t
	const n = 20
	for range n {
		e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/http?op=add", "application/json", "1")
	}
	e.waitState("/entities/counter/http", fmt.Sprint(n))
	// The name matches in any case; the key does not.
	if body := e.want(http.StatusOK, http.MethodGet, "/entities/Counter/http", "", ""); strings.TrimSpace(body) != fmt.Sprint(n) {
		t.Errorf("GET Counter/http = %q", body)
	}
	e.want(http.StatusNotFound, http.MethodGet, "/entities/counter/HTTP", "", "")
	e.want(http.StatusNotFound, http.MethodGet, "/entities/counter/nobody", "", "")

	var d struct {
		EntityID struct{ Name, Key string } `json:"entityId"`
		Exists   bool                       `json:"exists"`
		State    json.RawMessage            `json:"state"`
		LockedBy *string                    `json:"lockedBy"`
		Backlog  int                        `json:"backlog"`
		Recent   []struct {
			Operation string `json:"operation"`
			RequestID string `json:"requestId"`
			Failed    bool   `json:"failed"`
		} `json:"recentOperations"`
	}
	if err := json.Unmarshal([]byte(e.want(http.StatusOK, http.MethodGet, "/entities/counter/http?detail=true", "", "")), &d); err != nil {
		t.Fatal(err)
	}
	if d.EntityID.Name != "counter" || d.EntityID.Key != "http" || !d.Exists || string(d.State) != fmt.Sprint(n) ||
		d.LockedBy != nil || d.Backlog != 0 || len(d.Recent) == 0 {
		t.Fatalf("detail %+v", d)
	}
	last := d.Recent[len(d.Recent)-1]
	if last.Operation != "add" || last.Failed || last.RequestID == "" {
		t.Errorf("last operation %+v", last)
	}

	// The empty key ($), and an entity the App does not have.
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/$?op=add", "application/json", "7")
	e.waitState("/entities/counter/$", "7")
	e.want(http.StatusBadRequest, http.MethodPost, "/entities/nothing/x?op=add", "application/json", "1")
	e.want(http.StatusBadRequest, http.MethodPost, "/entities/counter/a%2Fb?op=add", "application/json", "1")
}

// testInputs: bad JSON is refused; a text body is a JSON string, which the counter cannot add, so
// the operation fails and its change is rolled back.
func (e *entityHTTP) testInputs(t *testing.T) {
	e.t = t
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/inputs?op=add", "application/json", "5")
	e.waitState("/entities/counter/inputs", "5")
	body := e.want(http.StatusBadRequest, http.MethodPost, "/entities/counter/inputs?op=add", "application/json", "{")
	if !strings.Contains(body, "Could not parse JSON content") {
		t.Errorf("bad JSON: %s", body)
	}
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/inputs?op=add", "text/plain", "3")
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/inputs?op=add", "application/json", "2")
	e.waitState("/entities/counter/inputs", "7")
	var d struct {
		Recent []struct {
			Operation string `json:"operation"`
			Failed    bool   `json:"failed"`
		} `json:"recentOperations"`
	}
	if err := json.Unmarshal([]byte(e.want(http.StatusOK, http.MethodGet, "/entities/counter/inputs?detail=true", "", "")), &d); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, op := range d.Recent {
		if op.Failed {
			failed++
		}
	}
	if len(d.Recent) != 3 || failed != 1 || !d.Recent[1].Failed {
		t.Errorf("recent operations %+v: want add, add (failed: \"3\" is a string), add", d.Recent)
	}
}

// testList: GET entities[/{name}] with and without state, paging on the continuation token.
func (e *entityHTTP) testList(t *testing.T) {
	e.t = t
	for i, key := range []string{"list-a", "list-b", "list-c"} {
		e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/"+key+"?op=add", "application/json", fmt.Sprint(i+1))
	}
	for i, key := range []string{"list-a", "list-b", "list-c"} {
		e.waitState("/entities/counter/"+key, fmt.Sprint(i+1))
	}
	type item struct {
		EntityID struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"entityId"`
		LastOperationTime string          `json:"lastOperationTime"`
		State             json.RawMessage `json:"state"`
	}
	states := map[string]string{}
	token, pages := "", 0
	for {
		header := []string{}
		if token != "" {
			header = []string{"x-ms-continuation-token", token}
		}
		code, h, body := e.do(http.MethodGet, "/entities/counter?fetchState=true&top=2", entityHTTPSystemKey, "", "", header...)
		if code != http.StatusOK {
			t.Fatalf("list: %d %s", code, body)
		}
		if _, ok := h["X-Ms-Continuation-Token"]; !ok {
			t.Fatal("no x-ms-continuation-token header in the answer")
		}
		var page []item
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d with top=2", len(page))
		}
		for _, it := range page {
			if it.EntityID.Name != "counter" {
				t.Errorf("entity %+v in the counter listing", it.EntityID)
			}
			if _, err := time.Parse(time.RFC3339Nano, it.LastOperationTime); err != nil {
				t.Errorf("lastOperationTime %q: %v", it.LastOperationTime, err)
			}
			if _, dup := states[it.EntityID.Key]; dup {
				t.Errorf("%q listed twice", it.EntityID.Key)
			}
			states[it.EntityID.Key] = string(it.State)
		}
		pages++
		if token = h.Get("X-Ms-Continuation-Token"); token == "" {
			break
		}
	}
	for i, key := range []string{"list-a", "list-b", "list-c"} {
		if states[key] != fmt.Sprint(i+1) {
			t.Errorf("state of %s = %q, want %d (all: %v)", key, states[key], i+1, states)
		}
	}
	if pages < 2 {
		t.Errorf("%d pages for %d entities with top=2", pages, len(states))
	}
	// Without fetchState, the state is null; a forged token is a 400.
	body := e.want(http.StatusOK, http.MethodGet, "/entities", "", "")
	var all []item
	if err := json.Unmarshal([]byte(body), &all); err != nil || len(all) < 3 {
		t.Fatalf("GET /entities: %v %s", err, body)
	}
	for _, it := range all {
		if string(it.State) != "null" {
			t.Errorf("state %s without fetchState", it.State)
		}
	}
	code, _, _ := e.do(http.MethodGet, "/entities", entityHTTPSystemKey, "", "", "x-ms-continuation-token", "forged-token")
	if code != http.StatusBadRequest {
		t.Errorf("forged token: %d, want 400", code)
	}
}

// testDeleteAndClean: DELETE removes the state (404 after), and clean storage removes the empty
// entity, with the master key only.
func (e *entityHTTP) testDeleteAndClean(t *testing.T) {
	e.t = t
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/doomed?op=add", "application/json", "4")
	e.waitState("/entities/counter/doomed", "4")
	e.want(http.StatusAccepted, http.MethodDelete, "/entities/counter/doomed", "", "")
	e.waitState("/entities/counter/doomed", "")
	if body := e.want(http.StatusOK, http.MethodGet, "/entities/counter", "", ""); strings.Contains(body, `"doomed"`) {
		t.Errorf("a deleted entity is listed: %s", body)
	}
	clean := "/entities/$clean?removeEmptyEntities=true&releaseOrphanedLocks=true&idleSeconds=0"
	if code, _, body := e.do(http.MethodPost, clean, entityHTTPSystemKey, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("clean with the system key: %d %s, want 401", code, body)
	}
	code, _, body := e.do(http.MethodPost, clean, entityHTTPMasterKey, "", "")
	if code != http.StatusOK {
		t.Fatalf("clean: %d %s", code, body)
	}
	var res struct {
		Removed  *int `json:"emptyEntitiesRemoved"`
		Released *int `json:"orphanedLocksReleased"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Removed == nil || res.Released == nil {
		t.Fatalf("clean answer %s: %v", body, err)
	}
	if *res.Removed < 1 || *res.Released != 0 {
		t.Errorf("clean answer %s: want at least the deleted entity removed, no lock released", body)
	}
	detail, _, _ := e.do(http.MethodGet, "/entities/counter/doomed?detail=true", entityHTTPSystemKey, "", "")
	if detail != http.StatusNotFound {
		t.Errorf("the cleaned entity still answers detail: %d", detail)
	}
}

// testInstanceRoutes: an entity is no instance for the instance routes.
func (e *entityHTTP) testInstanceRoutes(t *testing.T) {
	e.t = t
	e.want(http.StatusAccepted, http.MethodPost, "/entities/counter/hidden?op=add", "application/json", "1")
	e.waitState("/entities/counter/hidden", "1")
	e.want(http.StatusNotFound, http.MethodGet, "/instances/@counter@hidden", "", "")
	e.want(http.StatusNotFound, http.MethodGet, "/instances/%40counter%40hidden", "", "")
	e.want(http.StatusNotFound, http.MethodPost, "/instances/@counter@hidden/terminate", "", "")
	e.want(http.StatusNotFound, http.MethodPost, "/instances/@counter@hidden/raiseEvent/x", "application/json", "1")
	if body := e.want(http.StatusOK, http.MethodGet, "/instances", "", ""); strings.Contains(body, "@counter@") {
		t.Errorf("GET /instances lists entities: %s", body)
	}
	e.want(http.StatusNotFound, http.MethodDelete, "/instances/@counter@hidden", "", "")
	e.waitState("/entities/counter/hidden", "1")
}
