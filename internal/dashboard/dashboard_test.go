package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

var (
	errUnavailable = errors.New("app not running")
	errBroken      = errors.New("disk on fire")
)

// fakeBackend records the last query and answers from fixed data.
type fakeBackend struct {
	instances map[string]store.Instance
	history   map[string][]history.Event
	lastQuery store.Query
	listErr   error
	// entities are answered by QueryEntities (all, in ID order) and EntityDetail.
	entities        map[string]control.EntityRecord
	lastEntityQuery control.EntityQuery
}

func (f *fakeBackend) Hub() string             { return "TestHub" }
func (f *fakeBackend) Orchestrators() []string { return []string{"hello", "Approval", "fan_out"} }

func (f *fakeBackend) GetInstance(_ context.Context, id string) (store.Instance, error) {
	inst, ok := f.instances[id]
	if !ok {
		return store.Instance{}, store.ErrNotFound
	}
	return inst, nil
}

func (f *fakeBackend) History(_ context.Context, id string) ([]history.Event, error) {
	return f.history[id], nil
}

func (f *fakeBackend) ListInstances(_ context.Context, q store.Query) ([]store.Instance, string, error) {
	f.lastQuery = q
	if f.listErr != nil {
		return nil, "", f.listErr
	}
	if q.ContinuationToken != "" && q.ContinuationToken != "page2" {
		return nil, "", store.ErrInvalidToken
	}
	var out []store.Instance
	for _, inst := range f.instances {
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b store.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, "page2", nil
}

func (f *fakeBackend) CountInstances(_ context.Context, q store.Query) (map[store.Status]int, error) {
	f.lastQuery = q
	return map[store.Status]int{store.StatusRunning: 2, store.StatusFailed: 1}, nil
}

func (f *fakeBackend) Unclaimed() []store.Unclaimed {
	return []store.Unclaimed{{Kind: store.ActivityWorkKind, Name: "Charge", Count: 4, Oldest: 9}}
}

func (f *fakeBackend) ErrorKind(err error) httpapi.ErrorKind {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpapi.KindNotFound
	case errors.Is(err, store.ErrInvalidToken):
		return httpapi.KindInvalidInput
	case errors.Is(err, errUnavailable):
		return httpapi.KindUnavailable
	}
	return httpapi.KindOther
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newFake() *fakeBackend {
	return &fakeBackend{
		instances: map[string]store.Instance{
			"a1": {ID: "a1", Name: "hello", Status: store.StatusCompleted, CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
				Input: []byte(`"Tokyo"`), Output: []byte(`["Hello Tokyo!"]`)},
			"b2": {ID: "b2", Name: "fan_out", Status: store.StatusFailed, CreatedAt: t0, UpdatedAt: t0, ParentID: "a1",
				Failure: []byte(`{"type":"*errors.errorString","message":"boom","stackTrace":"main.go:1","inner":{"message":"root cause"}}`)},
		},
		history: map[string][]history.Event{},
	}
}

type response struct {
	code int
	hdr  http.Header
	body []byte
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.body)
	}
	return v
}

func messageOf(t *testing.T, r response) string {
	t.Helper()
	return decode[struct{ Message string }](t, r).Message
}

func TestShellIsServedWithSecurityHeaders(t *testing.T) {
	h := New(newFake(), Options{Authorize: func(*http.Request) bool { return false }})
	for path, ctype := range map[string]string{
		"/dashboard/":          "text/html; charset=utf-8",
		"/dashboard/app.js":    "text/javascript; charset=utf-8",
		"/dashboard/style.css": "text/css; charset=utf-8",
		"/dashboard/icon.svg":  "image/svg+xml",
	} {
		r := get(t, h, path) // no key: the shell carries no data
		if r.code != http.StatusOK || r.hdr.Get("Content-Type") != ctype || len(r.body) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %q with a body", path, r.code, r.hdr.Get("Content-Type"), len(r.body), ctype)
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": "default-src 'self'",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := r.hdr.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
	if r := get(t, h, "/dashboard/nope.js"); r.code != http.StatusNotFound {
		t.Errorf("unknown file: %d", r.code)
	}
	if r := get(t, h, "/dashboard/assets/index.html"); r.code != http.StatusNotFound {
		t.Errorf("embedded path served directly: %d", r.code)
	}
}

// The shell must not need anything the CSP forbids: no inline script or style, nothing remote.
func TestShellHasNoInlineCodeOrRemoteAssets(t *testing.T) {
	html := string(get(t, New(newFake(), Options{}), "/dashboard/").body)
	for _, bad := range []string{"<script>", "style=", "<style", "http://", "https://", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if m := regexp.MustCompile(`\son[a-z]+=`).FindString(html); m != "" {
		t.Errorf("index.html has an inline event handler: %q", m)
	}
	js := string(get(t, New(newFake(), Options{}), "/dashboard/app.js").body)
	// SVG's XML namespace is a name that createElementNS needs, never fetched.
	js = strings.ReplaceAll(js, "'http://www.w3.org/2000/svg'", "")
	for _, bad := range []string{"innerHTML", "eval(", "new Function", "http://", "https://"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js contains %q", bad)
		}
	}
}

func TestOnlyGET(t *testing.T) {
	h := New(newFake(), Options{})
	req := httptest.NewRequest(http.MethodPost, "/dashboard/api/instances", strings.NewReader("{}"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestAPIRequiresAuthorization(t *testing.T) {
	key := "k"
	h := New(fakeWithEntities(), Options{Authorize: func(r *http.Request) bool { return r.Header.Get("x-functions-key") == key }})
	for _, path := range []string{"/dashboard/api/info", "/dashboard/api/instances", "/dashboard/api/counts", "/dashboard/api/instances/a1",
		"/dashboard/api/entities", "/dashboard/api/entity?name=counter&key=cats"} {
		r := get(t, h, path)
		if r.code != http.StatusUnauthorized || !strings.Contains(messageOf(t, r), "master key") {
			t.Errorf("GET %s without a key: %d %s", path, r.code, r.body)
		}
		if r.hdr.Get("X-Frame-Options") != "DENY" || r.hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: headers %v", path, r.hdr)
		}
		if r := get(t, h, path, "x-functions-key", key); r.code != http.StatusOK {
			t.Errorf("GET %s with the key: %d %s", path, r.code, r.body)
		}
	}
}

// TestAPISaysWhereTheKeyIs: the 401 answer carries the host's help on the master key, and says
// when the host has none, so the page does not ask for a key that does not exist.
func TestAPISaysWhereTheKeyIs(t *testing.T) {
	deny := func(*http.Request) bool { return false }
	type answer struct {
		Message   string
		MasterKey bool   `json:"masterKey"`
		KeyHelp   string `json:"keyHelp"`
	}
	h := New(newFake(), Options{Authorize: deny, KeyHelp: "print it with `reprise keys`"})
	a := decode[answer](t, get(t, h, "/dashboard/api/info"))
	if !a.MasterKey || a.KeyHelp != "print it with `reprise keys`" || !strings.Contains(a.Message, "reprise keys") {
		t.Errorf("401 of a host with a master key: %+v", a)
	}
	h = New(newFake(), Options{Authorize: deny, NoMasterKey: true, KeyHelp: "set REPRISE_MASTER_KEY"})
	a = decode[answer](t, get(t, h, "/dashboard/api/info"))
	if a.MasterKey || !strings.Contains(a.Message, "no master key") || !strings.Contains(a.Message, "REPRISE_MASTER_KEY") {
		t.Errorf("401 of a host without a master key: %+v", a)
	}
}

func TestInfo(t *testing.T) {
	h := New(newFake(), Options{Anonymous: true})
	info := decode[Info](t, get(t, h, "/dashboard/api/info"))
	if info.Hub != "TestHub" || !info.Anonymous {
		t.Errorf("info: %+v", info)
	}
	if want := []string{"Approval", "fan_out", "hello"}; !slices.Equal(info.Orchestrators, want) {
		t.Errorf("orchestrators %v, want %v (sorted, case kept)", info.Orchestrators, want)
	}
	if len(info.Statuses) != 8 || info.Statuses[0] != "Pending" {
		t.Errorf("statuses: %v", info.Statuses)
	}
}

func TestListParsesFilters(t *testing.T) {
	f := newFake()
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/instances?status=Running,failed&status=Running&name=hello&createdFrom=2026-03-01T09:00:00%2B01:00&createdTo=2026-03-02T00:00:00Z&prefix=a&top=20&token=page2")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	q := f.lastQuery
	if !slices.Equal(q.Statuses, []store.Status{store.StatusRunning, store.StatusFailed}) {
		t.Errorf("statuses %v", q.Statuses)
	}
	if q.Name != "hello" || q.IDPrefix != "a" || q.PageSize != 20 || q.ContinuationToken != "page2" || q.WithoutPayloads {
		t.Errorf("query %+v", q)
	}
	if !q.CreatedFrom.Equal(t0.Add(-2*time.Hour)) || !q.CreatedTo.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("times %v %v", q.CreatedFrom, q.CreatedTo)
	}

	page := decode[Page](t, r)
	if page.Next != "page2" || len(page.Instances) != 2 {
		t.Fatalf("page %+v", page)
	}
	want := Summary{ID: "b2", Name: "fan_out", Status: "Failed", CreatedAt: "2026-03-01T10:00:00Z", UpdatedAt: "2026-03-01T10:00:00Z", ParentID: "a1"}
	if page.Instances[1] != want {
		t.Errorf("row %+v, want %+v", page.Instances[1], want)
	}
	// Exact JSON keys, as the page reads them.
	var raw map[string][]map[string]any
	_ = json.Unmarshal(r.body, &raw)
	for _, k := range []string{"id", "name", "status", "createdAt", "updatedAt"} {
		if _, ok := raw["instances"][0][k]; !ok {
			t.Errorf("row without %q: %v", k, raw["instances"][0])
		}
	}

	get(t, h, "/dashboard/api/instances")
	if q := f.lastQuery; q.PageSize != defaultTop || q.Statuses != nil || !q.CreatedFrom.IsZero() || q.Name != "" || !q.NewestFirst {
		t.Errorf("default query %+v, want newest first with the default page size and no filter", q)
	}
	get(t, h, "/dashboard/api/instances?order=oldest")
	if f.lastQuery.NewestFirst {
		t.Error("order=oldest listed newest first")
	}
	get(t, h, "/dashboard/api/instances?order=newest")
	if !f.lastQuery.NewestFirst {
		t.Error("order=newest did not list newest first")
	}
	// A datetime-local value (no zone) is UTC; the key may come as code= and is ignored here.
	get(t, h, "/dashboard/api/instances?createdFrom=2026-03-01T10:00&code=secret")
	if !f.lastQuery.CreatedFrom.Equal(t0) {
		t.Errorf("createdFrom without a zone: %v", f.lastQuery.CreatedFrom)
	}
}

func TestBadInputIs400(t *testing.T) {
	h := New(newFake(), Options{})
	for target, want := range map[string]string{
		"/dashboard/api/instances?status=Sleeping":                                    `unknown runtime status "Sleeping"`,
		"/dashboard/api/counts?status=Nope":                                           `unknown runtime status "Nope"`,
		"/dashboard/api/instances?createdFrom=yesterday":                              `invalid createdFrom "yesterday"`,
		"/dashboard/api/counts?createdTo=2026-13-01":                                  `invalid createdTo`,
		"/dashboard/api/instances?createdFrom=2026-03-02&createdTo=2026-03-01":        "createdTo (2026-03-01T00:00:00Z) is before createdFrom",
		"/dashboard/api/instances?top=0":                                              `invalid top "0"`,
		"/dashboard/api/instances?top=5000":                                           `invalid top "5000"`,
		"/dashboard/api/instances?top=ten":                                            `invalid top "ten"`,
		"/dashboard/api/instances?order=random":                                       `invalid order "random"`,
		"/dashboard/api/instances?token=forged":                                       "invalid continuation token",
		"/dashboard/api/instances?stauts=Running":                                     `unknown query parameter "stauts"`,
		"/dashboard/api/instances/a%2Fb":                                              "invalid instance ID",
		"/dashboard/api/instances?createdFrom=2026-03-01T10:00:00Z&createdTo=garbage": "invalid createdTo",
		"/dashboard/api/instances?createdFrom=0001-01-01":                             "want a time from 1678-01-01 to 2261-12-31",
		"/dashboard/api/counts?createdTo=9999-01-01":                                  "invalid createdTo",
		"/dashboard/api/instances?version=1.%FF":                                      "invalid version filter: the orchestration version",
		"/dashboard/api/counts?version=1.0&version=%00":                               "contains a NUL character",
		"/dashboard/api/instances?version=" + strings.Repeat("9", 2049):               "is 2049 bytes long, the limit is 2048",
		"/dashboard/api/instances?" + strings.Repeat("version=v&", 101):               "101 versions, at most 100",
	} {
		r := get(t, h, target)
		if r.code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s, want 400", target, r.code, r.body)
			continue
		}
		if msg := messageOf(t, r); !strings.Contains(msg, want) {
			t.Errorf("GET %s: message %q, want it to contain %q", target, msg, want)
		}
	}
}

func TestErrorsByKind(t *testing.T) {
	f := newFake()
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/instances/missing")
	if r.code != http.StatusNotFound || !strings.Contains(messageOf(t, r), "TestHub") {
		t.Errorf("unknown instance: %d %s", r.code, r.body)
	}
	if r := get(t, h, "/dashboard/api/nothing-here"); r.code != http.StatusNotFound {
		t.Errorf("unknown route: %d", r.code)
	}
	f.listErr = errUnavailable
	if r := get(t, h, "/dashboard/api/instances"); r.code != http.StatusServiceUnavailable {
		t.Errorf("unavailable: %d %s", r.code, r.body)
	}
	f.listErr = errBroken
	if r := get(t, h, "/dashboard/api/instances"); r.code != http.StatusInternalServerError || !strings.Contains(messageOf(t, r), "disk on fire") {
		t.Errorf("broken: %d %s", r.code, r.body)
	}
}

func TestCounts(t *testing.T) {
	f := newFake()
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/counts?status=Running&name=hello&prefix=x")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if f.lastQuery.Statuses != nil || f.lastQuery.Name != "hello" || f.lastQuery.IDPrefix != "x" {
		t.Errorf("counts query %+v: the status filter must be dropped, the others kept", f.lastQuery)
	}
	c := decode[Counts](t, r)
	if c.Total != 3 || c.Counts["Running"] != 2 || c.Counts["Failed"] != 1 || len(c.Counts) != 8 {
		t.Errorf("counts %+v", c)
	}
	if v, ok := c.Counts["Completed"]; !ok || v != 0 {
		t.Errorf("Completed should be present with 0: %v", c.Counts)
	}
	if want := (Unclaimed{Kind: "activity", Name: "Charge", Count: 4}); len(c.Unclaimed) != 1 || c.Unclaimed[0] != want {
		t.Errorf("unclaimed %+v, want [%+v]", c.Unclaimed, want)
	}
}

func TestInstanceDetail(t *testing.T) {
	f := newFake()
	f.history["a1"] = []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: t0, Name: "hello", Input: []byte(`"Tokyo"`)},
		{ID: -1, Type: history.OrchestratorStarted, Time: t0},
		{ID: 0, Type: history.TaskScheduled, Time: t0.Add(10 * time.Millisecond), Name: "say_hello", Input: []byte(`"Tokyo"`)},
		{ID: -1, Type: history.TaskCompleted, Time: t0.Add(30 * time.Millisecond), TaskID: 0, Result: []byte(`"Hello Tokyo!"`)},
		{ID: -1, Type: history.ExecutionCompleted, Time: t0.Add(40 * time.Millisecond), Status: int(store.StatusCompleted), Result: []byte(`["Hello Tokyo!"]`)},
	}
	h := New(f, Options{})
	r := get(t, h, "/dashboard/api/instances/a1")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	d := decode[Detail](t, r)
	if d.ID != "a1" || d.Status != "Completed" || string(d.Input) != `"Tokyo"` || string(d.Output) != `["Hello Tokyo!"]` || string(d.CustomStatus) != "null" {
		t.Errorf("detail %+v", d)
	}
	if len(d.Timeline.Spans) != 1 || d.Timeline.Spans[0].Kind != SpanActivity || d.Timeline.Spans[0].End != "2026-03-01T10:00:00.03Z" {
		t.Errorf("timeline %+v", d.Timeline)
	}
	// The raw history is the management API's shape, scheduling merged into the completion.
	if len(d.History) != 3 || d.History[1].EventType != "TaskCompleted" || d.History[1].FunctionName != "say_hello" || string(d.History[1].Result) != `"Hello Tokyo!"` {
		t.Errorf("history %+v", d.History)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.body, &raw)
	// The history table's rows: every event but the bookkeeping, the completion named after its task.
	if len(d.Events) != 4 || d.Events[2].Type != "TaskCompleted" || d.Events[2].Name != "say_hello" || d.Events[2].Data != `"Hello Tokyo!"` {
		t.Errorf("events %+v", d.Events)
	}
	for _, k := range []string{"input", "output", "customStatus", "timeline", "history", "events"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("detail without %q", k)
		}
	}

	d = decode[Detail](t, get(t, h, "/dashboard/api/instances/b2"))
	if d.ParentID != "a1" || d.Failure == nil || d.Failure.Message != "boom" || d.Failure.StackTrace != "main.go:1" ||
		d.Failure.Type != "*errors.errorString" || d.Failure.Inner == nil || d.Failure.Inner.Message != "root cause" {
		t.Errorf("failed detail %+v, failure %+v", d, d.Failure)
	}
	if d.History == nil || d.Events == nil || d.Timeline.Spans == nil || d.Timeline.Marks == nil {
		t.Errorf("empty lists must be [] not null: %s", get(t, h, "/dashboard/api/instances/b2").body)
	}
}

// TestListShowsCustomStatus: the list's rows carry a compact custom status, cut like a bar's input,
// so the list must read the payloads.
func TestListShowsCustomStatus(t *testing.T) {
	f := newFake()
	a1 := f.instances["a1"]
	a1.CustomStatus = []byte(`{ "step": 2,  "of": 5 }`)
	f.instances["a1"] = a1
	b2 := f.instances["b2"]
	b2.CustomStatus = []byte(`"` + strings.Repeat("x", 300) + `"`)
	f.instances["b2"] = b2
	r := get(t, New(f, Options{}), "/dashboard/api/instances")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if f.lastQuery.WithoutPayloads {
		t.Error("the list asked the store without payloads: it has no custom status then")
	}
	page := decode[Page](t, r)
	if len(page.Instances) != 2 || page.Instances[0].CustomStatusPreview != `{"step":2,"of":5}` {
		t.Fatalf("rows %+v", page.Instances)
	}
	if p := page.Instances[1].CustomStatusPreview; len(p) != inputPreview+len("…") || !strings.HasSuffix(p, "…") {
		t.Errorf("long custom status: %d bytes %q, want it cut to %d and marked", len(p), p, inputPreview)
	}
	var raw struct{ Instances []map[string]any }
	_ = json.Unmarshal(r.body, &raw)
	for _, row := range raw.Instances {
		if _, ok := row["input"]; ok {
			t.Errorf("a list row carries the input: %v", row)
		}
	}
}

func TestLive(t *testing.T) {
	off := decode[Live](t, get(t, New(newFake(), Options{}), "/dashboard/api/live"))
	if !off.Off || off.Samples == nil || len(off.Samples) != 0 {
		t.Errorf("live without metrics = %+v, want off with an empty list", off)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	samples := []metrics.Sample{{At: at, Completed: 10, Failed: 1, Backlog: 3}, {At: at.Add(5 * time.Second), Completed: 20}}
	h := New(newFake(), Options{Live: func() ([]metrics.Sample, float64) { return samples, 5 }})
	got := decode[Live](t, get(t, h, "/dashboard/api/live"))
	if got.Off || got.Interval != 5 || !slices.EqualFunc(got.Samples, samples, func(a, b metrics.Sample) bool {
		return a.At.Equal(b.At) && a.Completed == b.Completed && a.Failed == b.Failed && a.Backlog == b.Backlog
	}) {
		t.Errorf("live = %+v, want the samples given every 5 s", got)
	}
}

// TestVersions: rows and the detail carry the instance's version (none: no key), and the listing
// and the counts filter by it: exactly, repeated for several, empty for the instances without.
func TestVersions(t *testing.T) {
	f := newFake()
	a1 := f.instances["a1"]
	a1.Version = "2.0 beta+1"
	f.instances["a1"] = a1
	h := New(f, Options{})

	r := get(t, h, "/dashboard/api/instances?version=2.0+beta%2B1&version=&version=%20padded%20")
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if want := []string{"2.0 beta+1", "", " padded "}; !slices.Equal(f.lastQuery.Versions, want) {
		t.Errorf("versions %q, want %q (whole, untrimmed)", f.lastQuery.Versions, want)
	}
	var raw struct{ Instances []map[string]any }
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Instances) != 2 {
		t.Fatalf("page %s: %v", r.body, err)
	}
	if v := raw.Instances[0]["version"]; v != "2.0 beta+1" {
		t.Errorf("row a1: version %v, want 2.0 beta+1", v)
	}
	if v, ok := raw.Instances[1]["version"]; ok {
		t.Errorf("row b2 has no version, but the row carries %v", v)
	}

	get(t, h, "/dashboard/api/counts?version=1.0&status=Running")
	if !slices.Equal(f.lastQuery.Versions, []string{"1.0"}) || f.lastQuery.Statuses != nil {
		t.Errorf("counts query %+v: want the version filter kept, the status dropped", f.lastQuery)
	}
	get(t, h, "/dashboard/api/instances")
	if f.lastQuery.Versions != nil {
		t.Errorf("versions %q without a version parameter", f.lastQuery.Versions)
	}

	if d := decode[Detail](t, get(t, h, "/dashboard/api/instances/a1")); d.Version != "2.0 beta+1" {
		t.Errorf("detail version %q", d.Version)
	}
	if body := get(t, h, "/dashboard/api/instances/b2").body; strings.Contains(string(body), `"version"`) {
		t.Errorf("detail of an instance without a version carries one: %s", body)
	}
}
