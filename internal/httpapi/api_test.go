package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

const wh = WebhookBase

// seeded returns a fake holding one instance per runtime status, created a second apart.
func seeded() *fakeBackend {
	f := newFake()
	f.add("run1", store.StatusRunning, 1)
	f.add("pend1", store.StatusPending, 2)
	f.add("done1", store.StatusCompleted, 3)
	f.add("fail1", store.StatusFailed, 4)
	f.add("term1", store.StatusTerminated, 5)
	f.add("susp1", store.StatusSuspended, 6)
	f.add("can1", store.StatusCanceled, 7)
	f.add("can2", store.StatusContinuedAsNew, 8)
	return f
}

// request is one call to the handler. remote defaults to a non-loopback address, as httptest's.
type request struct {
	method, target, body string
	header               map[string]string
	remote               string
}

func (rq request) do(h http.Handler) *httptest.ResponseRecorder {
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, rq.target, strings.NewReader(rq.body))
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	if rq.remote != "" {
		r.RemoteAddr = rq.remote
		if strings.HasPrefix(rq.remote, "127.") || strings.HasPrefix(rq.remote, "[::1]") {
			r.Host = "127.0.0.1:7071" // a local caller addresses the host by a loopback name
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var jsonHeader = map[string]string{"Content-Type": "application/json"}

// routeCase is one row of the route table test. Header values "" require the header present and
// empty; missing from want means not checked. Body checks: exact JSON (compacted), substrings,
// or empty.
type routeCase struct {
	name     string
	setup    func(*fakeBackend)
	req      request
	code     int
	body     string   // exact body, compared after compacting both sides
	contains []string // substrings of the body
	empty    bool     // the body (and Content-Type) must be empty
	header   map[string]string
	check    func(*testing.T, *fakeBackend, *httptest.ResponseRecorder)
}

func runRoutes(t *testing.T, cases []routeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := seeded()
			if tc.setup != nil {
				tc.setup(f)
			}
			api := New(Options{Backend: f, MaxBodyBytes: 64})
			w := tc.req.do(api)
			body := w.Body.String()
			if w.Code != tc.code {
				t.Fatalf("%s %s: code %d, want %d; body %s", tc.req.method, tc.req.target, w.Code, tc.code, body)
			}
			if tc.body != "" {
				if got, want := compact(t, body), compact(t, tc.body); got != want {
					t.Errorf("body\n got %s\nwant %s", got, want)
				}
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body %s does not contain %q", body, s)
				}
			}
			ct := w.Header().Get("Content-Type")
			if tc.empty {
				if body != "" || ct != "" {
					t.Errorf("want no body and no Content-Type; got %q, Content-Type %q", body, ct)
				}
			} else if body != "" && ct != jsonContentType {
				t.Errorf("Content-Type %q, want %q", ct, jsonContentType)
			}
			for k, v := range tc.header {
				vs, ok := w.Header()[http.CanonicalHeaderKey(k)]
				if !ok || len(vs) != 1 || vs[0] != v {
					t.Errorf("header %s = %q (present %v), want %q", k, vs, ok, v)
				}
			}
			if tc.check != nil {
				tc.check(t, f, w)
			}
		})
	}
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return buf.String()
}

// decodeCheckStatus decodes a 202 check-status body.
func decodeCheckStatus(t *testing.T, w *httptest.ResponseRecorder) checkStatusBody {
	t.Helper()
	var b checkStatusBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("check-status body: %v: %s", err, w.Body)
	}
	if b.ID == "" || w.Header().Get("Location") != b.StatusQueryGetURI {
		t.Fatalf("check-status: id %q, Location %q, statusQueryGetUri %q", b.ID, w.Header().Get("Location"), b.StatusQueryGetURI)
	}
	return b
}

func TestRoutingAndAccess(t *testing.T) {
	runRoutes(t, []routeCase{
		{name: "webhook base", req: request{target: wh + "/instances/done1"}, code: 200},
		{name: "trailing slash", req: request{target: wh + "/instances/done1/"}, code: 200},
		{name: "literal segments any case", req: request{target: "/Runtime/Webhooks/DurableTask/INSTANCES/done1"}, code: 200},
		{name: "rpc base from loopback v4", req: request{target: "/durabletask/instances/done1", remote: "127.0.0.1:5000"}, code: 200},
		{name: "rpc base from loopback v6", req: request{target: "/durabletask/instances/done1", remote: "[::1]:5000"}, code: 200},
		{name: "rpc base from elsewhere", req: request{target: "/durabletask/instances/done1", remote: "10.1.2.3:5000"}, code: 403,
			contains: []string{`"Message"`, "/runtime/webhooks/durabletask", "system key"}},
		{name: "rpc base with bad remote addr", req: request{target: "/durabletask/instances/done1", remote: "nonsense"}, code: 403},
		{name: "base alone", req: request{target: wh}, code: 404, empty: true},
		{name: "base with slash", req: request{target: wh + "/"}, code: 404, empty: true},
		{name: "base prefix of another word", req: request{target: wh + "x/instances/done1"}, code: 404, empty: true},
		{name: "other path", req: request{target: "/api/instances/done1"}, code: 404, empty: true},
		{name: "unknown route", req: request{target: wh + "/nothing/here"}, code: 404, empty: true},
		{name: "empty inner segment", req: request{method: "POST", target: wh + "/instances//terminate"}, code: 404, empty: true},
		{name: "too many segments", req: request{target: wh + "/instances/done1/a/b/c"}, code: 404, empty: true},
		{name: "POST on status route", req: request{method: "POST", target: wh + "/instances/done1"}, code: 404, empty: true},
		{name: "PUT on list route", req: request{method: "PUT", target: wh + "/instances"}, code: 404, empty: true},
		{name: "GET on start route", req: request{target: wh + "/orchestrators/hello"}, code: 404, empty: true},
		{name: "start without function name", req: request{method: "POST", target: wh + "/orchestrators"}, code: 404, empty: true},
		{name: "GET on terminate", req: request{target: wh + "/instances/run1/terminate"}, code: 404, empty: true},
		{name: "GET on raiseEvent", req: request{target: wh + "/instances/run1/raiseEvent/x"}, code: 404, empty: true},
		{name: "unknown operation", req: request{method: "POST", target: wh + "/instances/run1/explode"}, code: 404, empty: true},
		{name: "makeprimary POST", req: request{method: "POST", target: wh + "/makeprimary"}, code: 200, empty: true},
		{name: "makeprimary GET slash", req: request{target: wh + "/makeprimary/"}, code: 200, empty: true},
		{name: "entities list", req: request{target: wh + "/entities"}, code: 200, body: `[]`},
		{name: "entity read, none", req: request{target: wh + "/entities/counter/cats"}, code: 404, empty: true},
		{name: "entity signal", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", body: "1"}, code: 202, empty: true},
		{name: "entity delete", req: request{method: "DELETE", target: wh + "/entities/counter/cats"}, code: 202, empty: true},
		{name: "entity PUT", req: request{method: "PUT", target: wh + "/entities/counter/cats"}, code: 404, empty: true},
		{name: "query names any case, unknown ignored", req: request{target: wh + "/instances/done1?SHOWINPUT=False&code=x&TASKHUB=testhub&connection=c&connectionName=d"},
			code: 200, contains: []string{`"input":null`}},
		{name: "another task hub", req: request{target: wh + "/instances/done1?taskHub=OtherHub"}, code: 404,
			contains: []string{`"Message"`, `\"OtherHub\" is not served by this host`, `\"TestHub\"`}},
		{name: "another task hub, start", req: request{method: "POST", target: wh + "/orchestrators/hello?taskHub=OtherHub"}, code: 404,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if got, want := len(f.instances), len(seeded().instances); got != want {
					t.Errorf("a start for another hub created an instance: %d instances, want %d", got, want)
				}
			}},
		{name: "empty query values ignored", req: request{target: wh + "/instances/done1?showInput=&showHistory="},
			code: 200, contains: []string{`"input":{"city":"Tokyo"}`}},
		{name: "bad escape in reason kept", req: request{method: "POST", target: wh + "/instances/run1/terminate?reason=100%25;%zz"}, code: 202, empty: true,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if got := f.callLog(); !slices.Equal(got, []string{"terminate run1 100%;%zz"}) {
					t.Errorf("calls %q", got)
				}
			}},
	})
}

func TestAuthorize(t *testing.T) {
	f := seeded()
	var seen []string
	api := New(Options{Backend: f, Authorize: func(r *http.Request) bool {
		seen = append(seen, r.URL.Path)
		return r.URL.Query().Get("code") == "secret"
	}})
	for _, tc := range []struct {
		req  request
		code int
	}{
		{request{target: wh + "/instances/done1"}, 401},
		{request{target: wh + "/instances/done1?code=wrong"}, 401},
		{request{target: wh + "/no/such/route"}, 401}, // no route probing without the key
		{request{target: wh + "/instances/done1?code=secret"}, 200},
		// The loopback RPC base is not guarded by Authorize.
		{request{target: RPCBase + "/instances/done1", remote: "127.0.0.1:1"}, 200},
	} {
		w := tc.req.do(api)
		if w.Code != tc.code {
			t.Errorf("%s: code %d, want %d", tc.req.target, w.Code, tc.code)
		}
		// The docs promise a message saying how to pass the key (it used to be an empty body).
		if w.Code == 401 && (!strings.Contains(w.Body.String(), `"Message":"The management API requires the system key`) ||
			!strings.Contains(w.Body.String(), "x-functions-key") || w.Header().Get("Content-Type") != jsonContentType) {
			t.Errorf("%s: 401 with body %q, Content-Type %q; want a JSON message naming the key", tc.req.target, w.Body, w.Header().Get("Content-Type"))
		}
	}
	if len(seen) != 4 {
		t.Errorf("Authorize called %d times, want 4 (webhook requests only)", len(seen))
	}
}

func TestStart(t *testing.T) {
	started := func(want string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
			b := decodeCheckStatus(t, w)
			inst, ok := f.get(b.ID)
			if !ok || inst.Status != store.StatusPending {
				t.Fatalf("instance %q not started: %+v", b.ID, inst)
			}
			if string(f.lastStart) != want {
				t.Errorf("input %s, want %s", f.lastStart, want)
			}
		}
	}
	notStarted := func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		if f.lastStart != nil {
			t.Errorf("an instance was started with input %s", f.lastStart)
		}
	}
	cs := map[string]string{"Retry-After": "10"}
	runRoutes(t, []routeCase{
		{name: "new ID", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `{"a": 1}`},
			code: 202, header: cs, check: started(`{"a": 1}`)},
		{name: "given ID", req: request{method: "POST", target: wh + "/orchestrators/hello/order-7"},
			code: 202, contains: []string{`"id":"order-7"`}, check: started("null")},
		{name: "empty body is null", req: request{method: "POST", target: wh + "/orchestrators/hello", body: " \n"},
			code: 202, check: started("null")},
		{name: "JS empty-string body", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `""`},
			code: 202, check: started(`""`)},
		{name: "Python double-encoded body kept", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `"{\"a\": 1}"`},
			code: 202, check: started(`"{\"a\": 1}"`)},
		{name: "any content type", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `[1]`, header: map[string]string{"Content-Type": "text/plain"}},
			code: 202, check: started(`[1]`)},
		{name: "invalid JSON", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `{"a":`},
			code: 400, contains: []string{`"Message":"Invalid JSON content"`, `"ExceptionMessage":"`}, check: notStarted},
		{name: "body over the limit", req: request{method: "POST", target: wh + "/orchestrators/hello", body: `"` + strings.Repeat("x", 100) + `"`},
			code: 413, contains: []string{`"Message":"The request body is larger than the limit of 64 bytes."`}, check: notStarted},
		{name: "unknown orchestrator", req: request{method: "POST", target: wh + "/orchestrators/nope"},
			code: 400, contains: []string{"'nope'", `"ExceptionType":"System.ArgumentException"`}, check: notStarted},
		{name: "escaped slash in ID", req: request{method: "POST", target: wh + "/orchestrators/hello/a%2Fb"},
			code: 400, contains: []string{`invalid instance ID \"a/b\"`, "System.ArgumentException"}},
		{name: "reserved @ ID", req: request{method: "POST", target: wh + "/orchestrators/hello/@counter@x"}, code: 400},
		{name: "escaped space in ID decoded", req: request{method: "POST", target: wh + "/orchestrators/hello/a%20b"},
			code: 202, contains: []string{`"id":"a b"`, "/instances/a%20b?"}},
		{name: "active ID is a conflict", req: request{method: "POST", target: wh + "/orchestrators/hello/run1"},
			code: 409, body: `{"Message":"An orchestration instance with the ID 'run1' is already active: wait for it to finish or terminate it, or start the orchestration with another instance ID.",` +
				`"ExceptionType":"DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"}`},
		{name: "finished ID is reused", req: request{method: "POST", target: wh + "/orchestrators/hello/done1", body: "5"},
			code: 202, check: started("5")},
		{name: "timeout alone does not wait", req: request{method: "POST", target: wh + "/orchestrators/hello?timeout=30"},
			code: 202, check: started("null")},
		{name: "bad timeout", req: request{method: "POST", target: wh + "/orchestrators/hello?timeout=soon&pollingInterval=1"},
			code: 400, contains: []string{"'timeout'"}, check: notStarted},
		{name: "negative timeout", req: request{method: "POST", target: wh + "/orchestrators/hello?timeout=-1&pollingInterval=1"}, code: 400},
		{name: "interval over timeout", req: request{method: "POST", target: wh + "/orchestrators/hello?timeout=1&pollingInterval=2"},
			code: 400, contains: []string{"polling interval"}, check: notStarted},
		{name: "bad returnInternalServerErrorOnFailure", req: request{method: "POST", target: wh + "/orchestrators/hello?returnInternalServerErrorOnFailure=1"},
			code: 400, contains: []string{"'returnInternalServerErrorOnFailure'"}},
		// version is the npm client's startNew(name, {version}): URLSearchParams on the RPC base
		// (spaces as '+'), encodeURIComponent on the webhook URL.
		{name: "version", req: request{method: "POST", target: wh + "/orchestrators/hello/v-1?version=1.0"},
			code: 202, check: startedVersion("v-1", "1.0")},
		{name: "version escaped", req: request{method: "POST", target: wh + "/orchestrators/hello/v-2?version=2.0%2Bbuild%207&timeout=30"},
			code: 202, check: startedVersion("v-2", "2.0+build 7")},
		{name: "version with plus for space", req: request{method: "POST", target: RPCBase + "/orchestrators/hello/v-3?version=v+3", remote: "127.0.0.1:5000"},
			code: 202, check: startedVersion("v-3", "v 3")},
		{name: "version name in any case, repeated alike", req: request{method: "POST", target: wh + "/orchestrators/hello/v-4?Version=4&VERSION=4"},
			code: 202, check: startedVersion("v-4", "4")},
		{name: "empty version is none", req: request{method: "POST", target: wh + "/orchestrators/hello/v-5?version="},
			code: 202, check: startedVersion("v-5", "")},
		{name: "two versions", req: request{method: "POST", target: wh + "/orchestrators/hello/v-6?version=1&version=2"},
			code: 400, contains: []string{`invalid value \"2\" for query parameter 'version'`, `also given as \"1\"`}, check: notStarted},
	})
}

// startedVersion checks that the start created instance id with the version.
func startedVersion(id, version string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
	return func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
		t.Helper()
		if b := decodeCheckStatus(t, w); b.ID != id {
			t.Fatalf("started %q, want %q", b.ID, id)
		}
		if inst, ok := f.get(id); !ok || inst.Version != version {
			t.Fatalf("instance %q: %+v (found %v), want version %q", id, inst, ok, version)
		}
	}
}

func TestStatus(t *testing.T) {
	running := func(id string) map[string]string {
		return map[string]string{"Location": "http://example.com" + wh + "/instances/" + id + "?showInput=true", "Retry-After": "5"}
	}
	runRoutes(t, []routeCase{
		{name: "running", req: request{target: wh + "/instances/run1?showInput=true"}, code: 202, header: running("run1"),
			contains: []string{`"runtimeStatus":"Running"`}},
		{name: "pending", req: request{target: wh + "/instances/pend1?showInput=true"}, code: 202, header: running("pend1")},
		{name: "suspended", req: request{target: wh + "/instances/susp1?showInput=true"}, code: 202, header: running("susp1")},
		{name: "continued as new", req: request{target: wh + "/instances/can2?showInput=true"}, code: 202, header: running("can2")},
		{name: "completed", req: request{target: wh + "/instances/done1"}, code: 200,
			body: `{"name":"hello","instanceId":"done1","runtimeStatus":"Completed","input":{"city":"Tokyo"},"customStatus":null,
				"output":["Hello Tokyo!"],"createdTime":"2024-03-01T10:00:03Z","lastUpdatedTime":"2024-03-01T10:00:04Z"}`,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if w.Header().Get("Location") != "" || w.Header().Get("Retry-After") != "" {
					t.Errorf("finished instance with Location/Retry-After: %v", w.Header())
				}
			}},
		{name: "terminated", req: request{target: wh + "/instances/term1"}, code: 200, contains: []string{`"output":"stopped"`}},
		{name: "version shown", setup: func(f *fakeBackend) { setVersion(f, "done1", `2.0 "beta"`) }, req: request{target: wh + "/instances/done1"}, code: 200,
			body: `{"name":"hello","instanceId":"done1","runtimeStatus":"Completed","input":{"city":"Tokyo"},"customStatus":null,
				"output":["Hello Tokyo!"],"createdTime":"2024-03-01T10:00:03Z","lastUpdatedTime":"2024-03-01T10:00:04Z","version":"2.0 \"beta\""}`},
		{name: "canceled", req: request{target: wh + "/instances/can1"}, code: 200},
		{name: "failed", req: request{target: wh + "/instances/fail1"}, code: 200, contains: []string{`"output":"boom"`}},
		{name: "failed as 500", req: request{target: wh + "/instances/fail1?returnInternalServerErrorOnFailure=True"}, code: 500,
			contains: []string{`"runtimeStatus":"Failed"`}},
		{name: "completed with 500 flag", req: request{target: wh + "/instances/done1?returnInternalServerErrorOnFailure=true"}, code: 200},
		{name: "not found", req: request{target: wh + "/instances/nope"}, code: 404, empty: true},
		{name: "showInput false", req: request{target: wh + "/instances/done1?showInput=false"}, code: 200, contains: []string{`"input":null`}},
		{name: "bad boolean", req: request{target: wh + "/instances/done1?showHistory=yes"}, code: 400,
			contains: []string{`'showHistory'`, `\"yes\"`, "System.ArgumentException"}},
		{name: "bad showInput", req: request{target: wh + "/instances/done1?showInput=0"}, code: 400, contains: []string{`'showInput'`}},
		{name: "history asked, none stored", req: request{target: wh + "/instances/done1?showHistory=true"}, code: 200,
			contains: []string{`"historyEvents":[]`}},
		{name: "no history unless asked", req: request{target: wh + "/instances/done1"}, code: 200,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if strings.Contains(w.Body.String(), "historyEvents") {
					t.Errorf("historyEvents without showHistory: %s", w.Body)
				}
			}},
		{name: "no history for pending", req: request{target: wh + "/instances/pend1?showHistory=true"}, code: 202,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if strings.Contains(w.Body.String(), "historyEvents") {
					t.Errorf("historyEvents for a Pending instance: %s", w.Body)
				}
			}},
		{name: "history shown", setup: func(f *fakeBackend) { f.histories["done1"] = goldenHistory() },
			req: request{target: wh + "/instances/done1?showHistory=TRUE&showHistoryOutput=true"}, code: 200,
			contains: []string{`"historyEvents":[{"EventType":"ExecutionStarted","FunctionName":"hello"`, `"Result":"Hello Tokyo!"`}},
		{name: "history without output", setup: func(f *fakeBackend) { f.histories["done1"] = goldenHistory() },
			req: request{target: wh + "/instances/done1?showHistory=true"}, code: 200,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if !strings.Contains(w.Body.String(), `"historyEvents":[{`) || strings.Contains(w.Body.String(), `"Result"`) {
					t.Errorf("want history without Result: %s", w.Body)
				}
			}},
	})
}

func TestList(t *testing.T) {
	ids := func(want ...string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
			var page []InstanceStatus
			if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range page {
				got = append(got, s.InstanceID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids %q, want %q", got, want)
			}
		}
	}
	last := map[string]string{"X-Ms-Continuation-Token": ""}
	all := []string{"run1", "pend1", "done1", "fail1", "term1", "susp1", "can1", "can2"}
	runRoutes(t, []routeCase{
		{name: "all", req: request{target: wh + "/instances"}, code: 200, header: last, check: ids(all...)},
		{name: "all, trailing slash", req: request{target: wh + "/instances/"}, code: 200, header: last, check: ids(all...)},
		{name: "first page", req: request{target: wh + "/instances?top=3"}, code: 200,
			header: map[string]string{"X-Ms-Continuation-Token": "pos-3"}, check: ids("run1", "pend1", "done1")},
		{name: "middle page", req: request{target: wh + "/instances?top=3", header: map[string]string{"x-ms-continuation-token": "pos-3"}}, code: 200,
			header: map[string]string{"X-Ms-Continuation-Token": "pos-6"}, check: ids("fail1", "term1", "susp1")},
		{name: "last page", req: request{target: wh + "/instances/?top=3", header: map[string]string{"x-ms-continuation-token": "pos-6"}}, code: 200,
			header: last, check: ids("can1", "can2")},
		{name: "newest first (Reprise's own parameter)", req: request{target: wh + "/instances?order=newest&top=3"}, code: 200,
			check: ids("can2", "can1", "susp1")},
		{name: "oldest first, as without order", req: request{target: wh + "/instances?order=Oldest&top=2"}, code: 200, check: ids("run1", "pend1")},
		{name: "unknown order", req: request{target: wh + "/instances?order=sideways"}, code: 400,
			contains: []string{`invalid value \"sideways\" for query parameter 'order': want newest or oldest`}},
		{name: "bad token", req: request{target: wh + "/instances", header: map[string]string{"x-ms-continuation-token": "bnVsbA=="}}, code: 400,
			contains: []string{"invalid continuation token"}},
		{name: "statuses csv and repeated", req: request{target: wh + "/instances?runtimeStatus=running,%20COMPLETED&runtimeStatus=3"}, code: 200,
			check: ids("run1", "done1", "fail1")},
		{name: "numeric status", req: request{target: wh + "/instances?runtimeStatus=7"}, code: 200, check: ids("susp1")},
		{name: "unknown status", req: request{target: wh + "/instances?runtimeStatus=Running,Bogus"}, code: 400,
			contains: []string{`\"Bogus\"`, "'runtimeStatus'"}},
		{name: "out-of-range status number", req: request{target: wh + "/instances?runtimeStatus=-1"}, code: 400},
		{name: "created range", req: request{target: wh + "/instances?createdTimeFrom=2024-03-01T10:00:03.000Z&createdTimeTo=2024-03-01T10:00:04Z"},
			code: 200, check: ids("done1", "fail1")},
		{name: "created with offset", req: request{target: wh + "/instances?createdTimeFrom=2024-03-01T11:00:07%2B01:00"}, code: 200, check: ids("can1", "can2")},
		{name: "created with unencoded plus", req: request{target: wh + "/instances?createdTimeFrom=2024-03-01T11:00:07+01:00"}, code: 200, check: ids("can1", "can2")},
		{name: "bad date", req: request{target: wh + "/instances?createdTimeTo=yesterday"}, code: 400, contains: []string{"'createdTimeTo'"}},
		{name: "prefix", req: request{target: wh + "/instances?instanceIdPrefix=can"}, code: 200, check: ids("can1", "can2")},
		{name: "nothing matches", req: request{target: wh + "/instances?instanceIdPrefix=zzz"}, code: 200, body: `[]`, header: last},
		{name: "top zero", req: request{target: wh + "/instances?top=0"}, code: 400, contains: []string{"'top'"}},
		{name: "top too big", req: request{target: wh + "/instances?top=1001"}, code: 400},
		{name: "top not a number", req: request{target: wh + "/instances?top=ten"}, code: 400},
		{name: "top max", req: request{target: wh + "/instances?top=1000"}, code: 200,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if f.lastQuery.PageSize != 1000 || f.lastQuery.WithoutPayloads {
					t.Errorf("query %+v", f.lastQuery)
				}
			}},
		{name: "default top", req: request{target: wh + "/instances"}, code: 200,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if f.lastQuery.PageSize != 100 {
					t.Errorf("page size %d, want 100", f.lastQuery.PageSize)
				}
			}},
		{name: "version", setup: versions, req: request{target: wh + "/instances?version=1.0"}, code: 200, check: ids("run1", "fail1"),
			contains: []string{`"instanceId":"run1","runtimeStatus":"Running"`, `"version":"1.0"`}},
		{name: "versions repeated", setup: versions, req: request{target: wh + "/instances?version=1.0&Version=1.0%2C2"}, code: 200, check: ids("run1", "done1", "fail1")},
		{name: "version, comma not a separator", setup: versions, req: request{target: wh + "/instances?version=1.0,2"}, code: 200, check: ids("done1")},
		{name: "version case-sensitive", setup: versions, req: request{target: wh + "/instances?version=V1.0"}, code: 200, body: `[]`},
		{name: "empty version is none", setup: versions, req: request{target: wh + "/instances?version=&runtimeStatus=Pending,Terminated"}, code: 200,
			check: ids("pend1", "term1")},
		{name: "version and status", setup: versions, req: request{target: wh + "/instances?version=1.0&runtimeStatus=Failed"}, code: 200, check: ids("fail1")},
		{name: "no version filter", setup: versions, req: request{target: wh + "/instances?top=2"}, code: 200,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if f.lastQuery.Versions != nil {
					t.Errorf("versions %q without a version parameter", f.lastQuery.Versions)
				}
			}},
		{name: "too many versions", req: request{target: wh + "/instances?" + strings.Repeat("version=v&", 101)}, code: 400,
			contains: []string{"'version'", "at most 100 versions"},
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if f.lastQuery.Versions != nil {
					t.Errorf("the backend was asked for %d versions", len(f.lastQuery.Versions))
				}
			}},
		{name: "as many versions as allowed", req: request{target: wh + "/instances?" + strings.Repeat("version=v&", 100)}, code: 200,
			check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if len(f.lastQuery.Versions) != 100 {
					t.Errorf("the backend was asked for %d versions, want 100", len(f.lastQuery.Versions))
				}
			}},
		{name: "showInput false keeps output", req: request{target: wh + "/instances?instanceIdPrefix=done&showInput=false"}, code: 200,
			contains: []string{`"input":null`, `"output":["Hello Tokyo!"]`}},
		{name: "no history in lists", setup: func(f *fakeBackend) { f.histories["done1"] = goldenHistory() },
			req: request{target: wh + "/instances?showHistory=true"}, code: 200,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if strings.Contains(w.Body.String(), "historyEvents") {
					t.Errorf("history in a list: %s", w.Body)
				}
			}},
	})
}

// setVersion stamps a version on a seeded instance.
func setVersion(f *fakeBackend, id, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst := f.instances[id]
	inst.Version = version
	f.instances[id] = inst
}

// versions gives some seeded instances versions: run1 and fail1 1.0, done1 "1.0,2", the others
// none but can1 and susp1, which have 2.0.
func versions(f *fakeBackend) {
	setVersion(f, "run1", "1.0")
	setVersion(f, "fail1", "1.0")
	setVersion(f, "done1", "1.0,2")
	setVersion(f, "can1", "2.0")
	setVersion(f, "susp1", "2.0")
}

func TestPurge(t *testing.T) {
	remaining := func(want int) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
			if got := len(f.instances); got != want {
				t.Errorf("%d instances left, want %d", got, want)
			}
		}
	}
	runRoutes(t, []routeCase{
		{name: "one", req: request{method: "DELETE", target: wh + "/instances/done1"}, code: 200, body: `{"instancesDeleted":1}`, check: remaining(7)},
		{name: "one, not found", req: request{method: "DELETE", target: wh + "/instances/nope"}, code: 404, empty: true, check: remaining(8)},
		{name: "one, still active", req: request{method: "DELETE", target: wh + "/instances/run1"}, code: 409,
			body: `{"Message":"The orchestration instance 'run1' is still active; terminate it first.","ExceptionType":"System.InvalidOperationException"}`, check: remaining(8)},
		{name: "by filter without from", req: request{method: "DELETE", target: wh + "/instances"}, code: 400,
			body: `"Please provide value for 'createdTimeFrom' parameter."`, check: remaining(8)},
		{name: "by filter, bad from", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=x"}, code: 400,
			contains: []string{"'createdTimeFrom'"}},
		{name: "by filter, all finished", req: request{method: "DELETE", target: wh + "/instances/?createdTimeFrom=2024-01-01T00:00:00Z"}, code: 200,
			body: `{"instancesDeleted":4}`, check: func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
				remaining(4)(t, f, w)
				if f.lastPurge.CreatedTo.IsZero() || f.lastPurge.Statuses != nil {
					t.Errorf("purge filter %+v: want createdTimeTo defaulted to now, no statuses", f.lastPurge)
				}
			}},
		{name: "by filter, statuses", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2024-01-01&runtimeStatus=Completed,Terminated"},
			code: 200, body: `{"instancesDeleted":2}`, check: remaining(6)},
		{name: "by filter, active status", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2024-01-01&runtimeStatus=Running"},
			code: 400, contains: []string{"only finished instances"}, check: remaining(8)},
		{name: "by filter, to before everything", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2024-01-01&createdTimeTo=2024-02-01"},
			code: 404, empty: true, check: remaining(8)},
	})
}

func TestRaiseEvent(t *testing.T) {
	raised := func(want string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
			if got := f.callLog(); !slices.Equal(got, []string{"raise run1 approval"}) {
				t.Errorf("calls %q", got)
			}
			if string(f.lastEvent) != want {
				t.Errorf("payload %s, want %s", f.lastEvent, want)
			}
		}
	}
	notRaised := func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		if got := f.callLog(); len(got) != 0 {
			t.Errorf("calls %q", got)
		}
	}
	target := wh + "/instances/run1/raiseEvent/approval"
	onlyJSON := `{"Message":"Only application/json request content is supported"}`
	runRoutes(t, []routeCase{
		{name: "raised", req: request{method: "POST", target: target, body: `{"ok":true}`, header: jsonHeader}, code: 202, empty: true, check: raised(`{"ok":true}`)},
		{name: "charset allowed", req: request{method: "POST", target: target, body: `1`, header: map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}},
			code: 202, empty: true, check: raised(`1`)},
		{name: "operation any case", req: request{method: "POST", target: wh + "/instances/run1/RAISEEVENT/approval", body: `2`, header: jsonHeader}, code: 202, check: raised(`2`)},
		{name: "empty body is null", req: request{method: "POST", target: target, header: jsonHeader}, code: 202, check: raised(`null`)},
		{name: "no content type", req: request{method: "POST", target: target, body: `{}`}, code: 400, body: onlyJSON, check: notRaised},
		{name: "text content type", req: request{method: "POST", target: target, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}},
			code: 400, body: onlyJSON, check: notRaised},
		{name: "invalid JSON", req: request{method: "POST", target: target, body: `{nope}`, header: jsonHeader}, code: 400,
			contains: []string{`"Message":"Invalid JSON content"`}, check: notRaised},
		{name: "too large", req: request{method: "POST", target: target, body: strings.Repeat("1", 65), header: jsonHeader}, code: 413, check: notRaised},
		{name: "not found", req: request{method: "POST", target: wh + "/instances/nope/raiseEvent/approval", body: `1`, header: jsonHeader}, code: 404, empty: true},
		{name: "finished", req: request{method: "POST", target: wh + "/instances/fail1/raiseEvent/approval", body: `1`, header: jsonHeader}, code: 410,
			contains: []string{"has finished"}},
	})
}

func TestCommands(t *testing.T) {
	called := func(want ...string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
			if got := f.callLog(); !slices.Equal(got, want) {
				t.Errorf("calls %q, want %q", got, want)
			}
		}
	}
	post := func(path string) request { return request{method: "POST", target: wh + "/instances/" + path} }
	runRoutes(t, []routeCase{
		{name: "terminate", req: post("run1/terminate?reason=no%20longer+needed"), code: 202, empty: true, check: called("terminate run1 no longer needed")},
		{name: "terminate, body ignored", req: request{method: "POST", target: wh + "/instances/run1/terminate", body: "not json"}, code: 202, check: called("terminate run1 ")},
		{name: "terminate, any case", req: post("run1/Terminate"), code: 202, check: called("terminate run1 ")},
		{name: "terminate, not found", req: post("nope/terminate"), code: 404, empty: true},
		{name: "terminate, finished", req: post("done1/terminate"), code: 410,
			body: `{"Message":"The orchestration instance 'done1' has finished; it takes no more events or commands.","ExceptionType":"System.InvalidOperationException"}`},
		{name: "suspend", req: post("run1/suspend?reason=wait"), code: 202, empty: true, check: called("suspend run1 wait")},
		{name: "suspend, finished", req: post("term1/suspend"), code: 410},
		{name: "suspend, not found", req: post("nope/suspend"), code: 404},
		{name: "resume", req: post("susp1/resume?reason=go"), code: 202, empty: true, check: called("resume susp1 go")},
		{name: "resume, finished", req: post("can1/resume"), code: 410},
		{name: "resume, not found", req: post("nope/resume"), code: 404},
		{name: "rewind failed", req: post("fail1/rewind?reason=fixed"), code: 202, empty: true, check: called("rewind fail1 fixed")},
		{name: "rewind completed", req: post("done1/rewind"), code: 410, check: called(),
			body: `{"Message":"The orchestration instance 'done1' has not failed; only failed instances can be rewound.","ExceptionType":"System.InvalidOperationException"}`},
		{name: "rewind terminated", req: post("term1/rewind"), code: 410},
		{name: "rewind canceled", req: post("can1/rewind"), code: 410},
		// A JSON string, as Durable Functions sends it: the npm client shows the body as the message.
		{name: "rewind running", req: post("run1/rewind"), code: 412, body: `"The orchestration instance 'run1' has not failed; only failed instances can be rewound."`},
		{name: "rewind suspended", req: post("susp1/rewind"), code: 412},
		{name: "rewind pending", req: post("pend1/rewind"), code: 412},
		{name: "rewind, not found", req: post("nope/rewind"), code: 404, empty: true},
	})
}

func TestRestart(t *testing.T) {
	restartedAs := func(sameID string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
			b := decodeCheckStatus(t, w)
			if (sameID != "") != (b.ID == sameID) {
				t.Errorf("restarted as %q (same ID wanted: %q)", b.ID, sameID)
			}
			if inst, _ := f.get(b.ID); inst.Status != store.StatusPending || string(inst.Input) != `{"city":"Tokyo"}` {
				t.Errorf("restarted instance %+v", inst)
			}
		}
	}
	post := func(path string) request { return request{method: "POST", target: wh + "/instances/" + path} }
	runRoutes(t, []routeCase{
		{name: "new ID by default", req: post("done1/restart"), code: 202, header: map[string]string{"Retry-After": "10"}, check: restartedAs("")},
		{name: "new ID of an active instance", req: post("run1/restart?restartWithNewInstanceId=true"), code: 202, check: restartedAs("")},
		{name: "same ID", req: post("done1/restart?restartWithNewInstanceId=False"), code: 202, check: restartedAs("done1")},
		{name: "same ID, still active", req: post("run1/restart?restartWithNewInstanceId=false"), code: 409, contains: []string{"'run1' is already active"}},
		{name: "not found", req: post("nope/restart"), code: 400, body: `{"Message":"InstanceId does not match a valid orchestration instance."}`},
		{name: "bad flag", req: post("done1/restart?restartWithNewInstanceId=maybe"), code: 400, contains: []string{"'restartWithNewInstanceId'"}},
		{name: "bad wait", req: post("done1/restart?timeout=1&pollingInterval=5"), code: 400},
	})
}

func TestBackendErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		code     int
		contains string
		logged   bool
	}{
		{"unexpected", errKind(KindOther, "disk on fire"), 500, `{"Message":"Something went wrong while processing your request","ExceptionMessage":"disk on fire"}`, true},
		{"unavailable", errKind(KindUnavailable, "shutting down"), 503, `"ExceptionMessage":"shutting down"`, false},
		{"invalid input", errKind(KindInvalidInput, "bad thing"), 400, `"ExceptionType":"System.ArgumentException"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seeded()
			f.failWith = tc.err
			var logs bytes.Buffer
			api := New(Options{Backend: f, Logger: slogTo(&logs)})
			for _, rq := range []request{
				{target: wh + "/instances/done1"},
				{target: wh + "/instances"},
				{method: "POST", target: wh + "/orchestrators/hello"},
				{method: "POST", target: wh + "/instances/run1/terminate"},
				{method: "DELETE", target: wh + "/instances/done1"},
			} {
				logs.Reset()
				w := rq.do(api)
				if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.contains) {
					t.Errorf("%s %s: %d %s; want %d with %s", rq.method, rq.target, w.Code, w.Body, tc.code, tc.contains)
				}
				if strings.Contains(w.Body.String(), "StackTrace") {
					t.Errorf("stack trace in %s", w.Body)
				}
				if got := strings.Contains(logs.String(), tc.err.Error()); got != tc.logged {
					t.Errorf("%s %s: logged %v, want %v: %s", rq.method, rq.target, got, tc.logged, logs.String())
				}
			}
		})
	}
}

// TestCheckStatusShape checks the 202 body key by key, in order, and that it leaves out
// rewindPostUri while Links has it.
func TestCheckStatusShape(t *testing.T) {
	api := New(Options{Backend: seeded(), SystemKey: "k3y"})
	r := httptest.NewRequest("POST", "http://localhost:7071/api/start", nil)
	w := httptest.NewRecorder()
	api.WriteCheckStatus(w, r, "abc")

	base := "http://localhost:7071/runtime/webhooks/durabletask/instances/abc"
	qs := "taskHub=TestHub&connection=Storage&code=k3y"
	wantKeys := []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri",
		"restartPostUri", "suspendPostUri", "resumePostUri"}
	wantValues := []string{"abc", base + "?" + qs, base + "/raiseEvent/{eventName}?" + qs, base + "/terminate?reason={text}&" + qs,
		base + "?" + qs, base + "/restart?" + qs, base + "/suspend?reason={text}&" + qs, base + "/resume?reason={text}&" + qs}
	keys, values := objectPairs(t, w.Body.Bytes())
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys %q\nwant %q", keys, wantKeys)
	}
	for i := range min(len(values), len(wantValues)) {
		if values[i] != wantValues[i] {
			t.Errorf("%s = %s, want %s", keys[i], values[i], wantValues[i])
		}
	}
	if w.Code != 202 || w.Header().Get("Location") != base+"?"+qs || w.Header().Get("Retry-After") != "10" ||
		w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("code %d, headers %v", w.Code, w.Header())
	}

	l := api.Links(r, "abc")
	data, _ := json.Marshal(l)
	keys, _ = objectPairs(t, data)
	want := []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
		"purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"}
	if !slices.Equal(keys, want) || l.RewindPostURI != base+"/rewind?reason={text}&"+qs {
		t.Errorf("Links keys %q, rewind %q", keys, l.RewindPostURI)
	}
}

func TestLinksOriginAndEscaping(t *testing.T) {
	api := New(Options{Backend: seeded(), ConnectionName: "My Conn"})
	r := httptest.NewRequest("GET", "https://app.example:8443/api/x", nil) // sets r.TLS
	l := api.Links(r, "a b/c")
	want := "https://app.example:8443/runtime/webhooks/durabletask/instances/a%20b%2Fc?taskHub=TestHub&connection=My+Conn"
	if l.StatusQueryGetURI != want || l.ID != "a b/c" {
		t.Errorf("got %q (id %q)\nwant %q", l.StatusQueryGetURI, l.ID, want)
	}
}

// objectPairs returns the keys of a flat JSON object in order, with their values as JSON text
// (strings unquoted).
func objectPairs(t *testing.T, data []byte) (keys, values []string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", data)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		s := string(v)
		if strings.HasPrefix(s, `"`) && json.Unmarshal(v, &s) != nil {
			t.Fatalf("bad string %s", v)
		}
		keys, values = append(keys, k.(string)), append(values, s)
	}
	return keys, values
}

func TestClientData(t *testing.T) {
	api := New(Options{Backend: seeded(), SystemKey: "k/ey"})
	cd := api.ClientData("http://127.0.0.1:7071/")
	base := "http://127.0.0.1:7071/runtime/webhooks/durabletask"
	checks := map[string][2]string{
		"taskHubName":                   {cd.TaskHubName, "TestHub"},
		"rpcBaseUrl":                    {cd.RPCBaseURL, "http://127.0.0.1:7071/durabletask/"},
		"baseUrl":                       {cd.BaseURL, base},
		"requiredQueryStringParameters": {cd.RequiredQueryStringParameters, "code=k%2Fey"},
		"createNewInstancePostUri":      {cd.CreationURLs.CreateNewInstancePostURI, base + "/orchestrators/{functionName}[/{instanceId}]?code=k%2Fey"},
		"createAndWaitOnNewInstancePostUri": {cd.CreationURLs.CreateAndWaitOnNewInstancePostURI,
			base + "/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=k%2Fey"},
		"managementUrls.id": {cd.ManagementURLs.ID, "INSTANCEID"},
		"managementUrls.statusQueryGetUri": {cd.ManagementURLs.StatusQueryGetURI,
			base + "/instances/INSTANCEID?taskHub=TestHub&connection=Storage&code=k%2Fey"},
		"managementUrls.terminatePostUri": {cd.ManagementURLs.TerminatePostURI,
			base + "/instances/INSTANCEID/terminate?reason={text}&taskHub=TestHub&connection=Storage&code=k%2Fey"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	data, err := json.Marshal(cd)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := objectPairs(t, data)
	want := []string{"taskHubName", "creationUrls", "managementUrls", "baseUrl", "requiredQueryStringParameters", "rpcBaseUrl"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}

	noKey := New(Options{Backend: seeded()}).ClientData("http://localhost:7071")
	if noKey.CreationURLs.CreateNewInstancePostURI != "http://localhost:7071"+WebhookBase+"/orchestrators/{functionName}[/{instanceId}]" ||
		noKey.RequiredQueryStringParameters != "taskHub=TestHub" || !strings.HasSuffix(noKey.RPCBaseURL, "/durabletask/") ||
		strings.Contains(noKey.ManagementURLs.StatusQueryGetURI, "code=") {
		t.Errorf("without a key: %+v", noKey)
	}
}

func TestStatusPayloadShape(t *testing.T) {
	inst := store.Instance{ID: "p1", Name: "hello", Status: store.StatusPending,
		CreatedAt: baseTime.Add(123456789), UpdatedAt: baseTime.Add(999999999)}
	data, err := json.Marshal(StatusPayload(inst, nil, StatusOptions{ShowInput: true}))
	if err != nil {
		t.Fatal(err)
	}
	keys, values := objectPairs(t, data)
	wantKeys := []string{"name", "instanceId", "runtimeStatus", "input", "customStatus", "output", "createdTime", "lastUpdatedTime"}
	wantValues := []string{"hello", "p1", "Pending", "null", "null", "null", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z"}
	if !slices.Equal(keys, wantKeys) || !slices.Equal(values, wantValues) {
		t.Errorf("got %q %q\nwant %q %q", keys, values, wantKeys, wantValues)
	}

	// A Failed row with only failure details still shows the message as output; custom status
	// and a non-UTC time come out as JSON and UTC.
	failed := store.Instance{ID: "f", Status: store.StatusFailed, CustomStatus: []byte(`{"step":2}`),
		Failure:   []byte(`{"type":"Error","message":"it broke"}`),
		CreatedAt: time.Date(2024, 3, 1, 12, 0, 0, 0, time.FixedZone("X", 2*3600))}
	s := StatusPayload(failed, nil, StatusOptions{})
	if string(s.Output) != `"it broke"` || string(s.CustomStatus) != `{"step":2}` || s.CreatedTime != "2024-03-01T10:00:00Z" {
		t.Errorf("failed payload %+v", s)
	}
	// Stored bytes that are not JSON become a string rather than breaking the response.
	odd := store.Instance{ID: "o", Status: store.StatusTerminated, Output: []byte("plain reason"), Input: []byte("  ")}
	s = StatusPayload(odd, nil, StatusOptions{ShowInput: true})
	if string(s.Output) != `"plain reason"` || string(s.Input) != `""` {
		t.Errorf("odd payload output %s input %s", s.Output, s.Input)
	}
}

func TestResponseBodyRead(t *testing.T) {
	// The 413 check also holds when the client streams the body without a Content-Length.
	api := New(Options{Backend: seeded(), MaxBodyBytes: 10})
	r := httptest.NewRequest("POST", wh+"/orchestrators/hello", io.MultiReader(strings.NewReader("[1,"), strings.NewReader(strings.Repeat("1,", 20)+"1]")))
	r.ContentLength = -1
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("code %d, want 413", w.Code)
	}
}

// TestListAsksForAByteBound: the store is asked to end pages at the byte bound, and an empty page
// is still a JSON array.
func TestListAsksForAByteBound(t *testing.T) {
	for _, tc := range []struct{ opt, want int }{{0, DefaultMaxPageBytes}, {1234, 1234}} {
		f := seeded()
		api := New(Options{Backend: f, MaxPageBytes: tc.opt})
		if w := (request{target: wh + "/instances"}).do(api); w.Code != 200 || f.lastQuery.MaxBytes != tc.want {
			t.Errorf("MaxPageBytes %d: %d, store asked for MaxBytes %d, want %d", tc.opt, w.Code, f.lastQuery.MaxBytes, tc.want)
		}
	}
	w := (request{target: wh + "/instances?instanceIdPrefix=none"}).do(New(Options{Backend: seeded()}))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("empty page: %d %q, want 200 []", w.Code, w.Body.String())
	}
}
