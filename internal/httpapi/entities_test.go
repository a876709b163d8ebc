package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
)

// seedEntities adds the entities the entity route tests use, modified a second apart.
func seedEntities(f *fakeBackend) {
	f.addEntity("counter", "cats", `5`, 1)
	f.addEntity("counter", "dogs", `{"n": 2}`, 2)
	f.addEntity("counter", "empty", "", 3) // known, without state
	f.addEntity("Cart", "Alice", `["apple"]`, 4)
	held := f.addEntity("lock", "held", "", 5)
	f.setEntity(held.InstanceID, func(r *control.EntityRecord) { r.LockedBy, r.Backlog, r.Ops = "gone-orch1", 2, ops() })
	f.addEntity("counter", "", `0`, 6) // the empty key
}

// withEntities runs seedEntities before each case's own setup.
func withEntities(cases []routeCase) []routeCase {
	for i := range cases {
		setup := cases[i].setup
		cases[i].setup = func(f *fakeBackend) {
			seedEntities(f)
			if setup != nil {
				setup(f)
			}
		}
	}
	return cases
}

// signalled checks the signals the backend received.
func signalled(want ...control.SignalRequest) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
	return func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		t.Helper()
		got := f.signalLog()
		if len(got) != len(want) {
			t.Fatalf("signals %+v, want %+v", got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.EntityID != w.EntityID || g.Operation != w.Operation || string(g.Input) != string(w.Input) ||
				(g.Input == nil) != (w.Input == nil) || g.RequestID != "" || !g.At.IsZero() {
				t.Errorf("signal %d: %+v (input %q), want %+v (input %q)", i, g, g.Input, w, w.Input)
			}
		}
	}
}

func sig(id, op, input string) control.SignalRequest {
	r := control.SignalRequest{EntityID: id, Operation: op}
	if input != "" {
		r.Input = json.RawMessage(input)
	}
	return r
}

func TestEntityRead(t *testing.T) {
	local := "127.0.0.1:5000"
	runRoutes(t, withEntities([]routeCase{
		{name: "number state", req: request{target: wh + "/entities/counter/cats"}, code: 200, body: `5`},
		{name: "object state", req: request{target: wh + "/entities/counter/dogs"}, code: 200, body: `{"n":2}`},
		{name: "name any case", req: request{target: wh + "/entities/COUNTER/cats"}, code: 200, body: `5`},
		{name: "key keeps its case", req: request{target: wh + "/entities/counter/CATS"}, code: 404, empty: true},
		{name: "stored name lower case", req: request{target: wh + "/entities/cart/Alice"}, code: 200, body: `["apple"]`},
		{name: "$ is the empty key", req: request{target: wh + "/entities/counter/$"}, code: 200, body: `0`},
		{name: "escaped $ too", req: request{target: wh + "/entities/counter/%24"}, code: 200, body: `0`},
		{name: "rpc base", req: request{target: RPCBase + "/entities/counter/cats", remote: local}, code: 200, body: `5`},
		{name: "trailing slash", req: request{target: wh + "/entities/counter/cats/"}, code: 200, body: `5`},
		{name: "known without state", req: request{target: wh + "/entities/counter/empty"}, code: 404, empty: true},
		{name: "unknown", req: request{target: wh + "/entities/counter/nobody"}, code: 404, empty: true},
		{name: "unknown name", req: request{target: wh + "/entities/nothing/cats"}, code: 404, empty: true},
		{name: "detail", req: request{target: wh + "/entities/counter/cats?detail=true"}, code: 200,
			body: `{"entityId":{"name":"counter","key":"cats"},"exists":true,"state":5,"lastOperationTime":"2024-03-01T10:00:01Z",
				"lockedBy":null,"backlog":0,"recentOperations":[]}`},
		{name: "detail of a locked entity without state", req: request{target: wh + "/entities/lock/held?detail=True"}, code: 200,
			body: `{"entityId":{"name":"lock","key":"held"},"exists":false,"state":null,"lastOperationTime":"2024-03-01T10:00:05Z",
				"lockedBy":"gone-orch1","backlog":2,"recentOperations":[
				{"time":"2024-03-01T10:00:00Z","operation":"add","requestId":"r1","failed":false},
				{"time":"2024-03-01T10:00:01Z","operation":"get","requestId":"r2","caller":"orch1","failed":true}]}`},
		{name: "detail false is the state", req: request{target: wh + "/entities/counter/cats?detail=false"}, code: 200, body: `5`},
		{name: "detail of an unknown entity", req: request{target: wh + "/entities/counter/nobody?detail=true"}, code: 404, empty: true},
		{name: "detail not a boolean", req: request{target: wh + "/entities/counter/cats?detail=yes"}, code: 400,
			contains: []string{"'detail'"}},
		{name: "key with slash", req: request{target: wh + "/entities/counter/a%2Fb"}, code: 400, contains: []string{`must not contain '/'`}},
		{name: "key with backslash", req: request{target: wh + "/entities/counter/a%5Cb"}, code: 400, contains: []string{"must not contain"}},
		{name: "key with hash", req: request{target: wh + "/entities/counter/a%23b"}, code: 400, contains: []string{"must not contain"}},
		{name: "key with question mark", req: request{target: wh + "/entities/counter/a%3Fb"}, code: 400, contains: []string{"must not contain"}},
		{name: "key with a control character", req: request{target: wh + "/entities/counter/a%01b"}, code: 400, contains: []string{"control characters"}},
		{name: "name with @", req: request{target: wh + "/entities/coun@ter/cats"}, code: 400, contains: []string{"contains '@'"}},
		{name: "name with a control character", req: request{target: wh + "/entities/coun%0Ater/cats"}, code: 400, contains: []string{"control characters"}},
		{name: "store unavailable", setup: func(f *fakeBackend) { f.failWith = errKind(KindUnavailable, "closed") },
			req: request{target: wh + "/entities/counter/cats"}, code: 503},
		{name: "store broken", setup: func(f *fakeBackend) { f.failWith = errKind(KindOther, "disk on fire") },
			req: request{target: wh + "/entities/counter/cats"}, code: 500, contains: []string{"disk on fire"}},
	}))
}

func TestEntitySignal(t *testing.T) {
	noSignal := signalled()
	textHeader := map[string]string{"Content-Type": "text/plain"}
	runRoutes(t, withEntities([]routeCase{
		{name: "JSON input", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", header: jsonHeader, body: ` 1 `},
			code: 202, empty: true, check: signalled(sig("@counter@cats", "add", "1"))},
		{name: "JSON with charset", req: request{method: "POST", target: wh + "/entities/counter/cats?op=set",
			header: map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, body: `{"n":[1,2]}`},
			code: 202, empty: true, check: signalled(sig("@counter@cats", "set", `{"n":[1,2]}`))},
		{name: "name lower-cased, key kept", req: request{method: "POST", target: wh + "/entities/Counter/Cats?op=add", header: jsonHeader, body: `1`},
			code: 202, check: signalled(sig("@counter@Cats", "add", "1"))},
		{name: "creates the entity", req: request{method: "POST", target: wh + "/entities/counter/new?op=add", header: jsonHeader, body: `1`},
			code: 202, check: func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
				if _, ok := f.entities["@counter@new"]; !ok {
					t.Error("the signal did not create the entity")
				}
			}},
		{name: "op defaults to empty", req: request{method: "POST", target: wh + "/entities/counter/cats", header: jsonHeader, body: `1`},
			code: 202, check: signalled(sig("@counter@cats", "", "1"))},
		{name: "empty op is the default", req: request{method: "POST", target: wh + "/entities/counter/cats?op=", header: jsonHeader},
			code: 202, check: signalled(sig("@counter@cats", "", ""))},
		{name: "empty body is no input", req: request{method: "POST", target: wh + "/entities/counter/cats?op=reset", header: jsonHeader},
			code: 202, check: signalled(sig("@counter@cats", "reset", ""))},
		{name: "JSON whitespace is no input", req: request{method: "POST", target: wh + "/entities/counter/cats?op=reset", header: jsonHeader, body: " \n\t"},
			code: 202, check: signalled(sig("@counter@cats", "reset", ""))},
		{name: "text is a JSON string", req: request{method: "POST", target: wh + "/entities/counter/cats?op=note", header: textHeader, body: `say "hi" ✓`},
			code: 202, check: signalled(sig("@counter@cats", "note", `"say \"hi\" ✓"`))},
		{name: "no content type is text", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", body: `5`},
			code: 202, check: signalled(sig("@counter@cats", "add", `"5"`))},
		{name: "unparsable content type is text", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add",
			header: map[string]string{"Content-Type": "application/json; ==="}, body: `{`},
			code: 202, check: signalled(sig("@counter@cats", "add", `"{"`))},
		{name: "text keeps its spaces", req: request{method: "POST", target: wh + "/entities/counter/cats?op=note", header: textHeader, body: " a "},
			code: 202, check: signalled(sig("@counter@cats", "note", `" a "`))},
		{name: "$ is the empty key", req: request{method: "POST", target: wh + "/entities/counter/$?op=add", header: jsonHeader, body: `1`},
			code: 202, check: signalled(sig("@counter@", "add", "1"))},
		{name: "op escaped", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add%20two%26more", header: jsonHeader, body: `1`},
			code: 202, check: signalled(sig("@counter@cats", "add two&more", "1"))},
		{name: "rpc base", req: request{method: "POST", target: RPCBase + "/entities/counter/cats?op=add", header: jsonHeader, body: `1`, remote: "127.0.0.1:1"},
			code: 202, check: signalled(sig("@counter@cats", "add", "1"))},
		{name: "delete", req: request{method: "DELETE", target: wh + "/entities/counter/cats"},
			code: 202, empty: true, check: signalled(sig("@counter@cats", "delete", ""))},
		{name: "delete ignores op and body", req: request{method: "DELETE", target: wh + "/entities/counter/cats?op=add", header: jsonHeader, body: `{`},
			code: 202, check: signalled(sig("@counter@cats", "delete", ""))},
		{name: "bad JSON", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", header: jsonHeader, body: `{"n":`},
			code: 400, contains: []string{`"Message":"Could not parse JSON content: `}, check: noSignal},
		{name: "two JSON values", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", header: jsonHeader, body: `1 2`},
			code: 400, contains: []string{"Could not parse JSON content"}, check: noSignal},
		{name: "body too large", req: request{method: "POST", target: wh + "/entities/counter/cats?op=add", header: textHeader, body: strings.Repeat("x", 65)},
			code: 413, contains: []string{"larger than the limit of 64 bytes"}, check: noSignal},
		{name: "entity the app does not have", setup: func(f *fakeBackend) { f.entityNames = []string{"counter"} },
			req:  request{method: "POST", target: wh + "/entities/nothing/cats?op=add", header: jsonHeader, body: `1`},
			code: 400, contains: []string{"The function 'nothing' doesn't exist or is not an entity function registered with this app."}, check: noSignal},
		{name: "delete of an entity the app does not have", setup: func(f *fakeBackend) { f.entityNames = []string{"counter"} },
			req: request{method: "DELETE", target: wh + "/entities/nothing/cats"}, code: 400, check: noSignal},
		{name: "entity the app has, any case", setup: func(f *fakeBackend) { f.entityNames = []string{"Counter"} },
			req:  request{method: "POST", target: wh + "/entities/COUNTER/cats?op=add", header: jsonHeader, body: `1`},
			code: 202, check: signalled(sig("@counter@cats", "add", "1"))},
		{name: "key with slash", req: request{method: "POST", target: wh + "/entities/counter/a%2Fb?op=add"}, code: 400, check: noSignal},
		{name: "key with question mark", req: request{method: "DELETE", target: wh + "/entities/counter/a%3F"}, code: 400, check: noSignal},
		{name: "key with a control character", req: request{method: "POST", target: wh + "/entities/counter/a%7F?op=add"}, code: 400, check: noSignal},
		{name: "name with @", req: request{method: "POST", target: wh + "/entities/a@b/c?op=add"}, code: 400, check: noSignal},
		{name: "huge op", req: request{method: "POST", target: wh + "/entities/counter/cats?op=" + strings.Repeat("o", 2049)}, code: 400,
			contains: []string{"operation name", "limit is 2048"}, check: noSignal},
		{name: "store unavailable", setup: func(f *fakeBackend) { f.failWith = errKind(KindUnavailable, "closed") },
			req: request{method: "POST", target: wh + "/entities/counter/cats?op=add"}, code: 503},
		{name: "PUT", req: request{method: "PUT", target: wh + "/entities/counter/cats"}, code: 404, empty: true, check: noSignal},
		{name: "PATCH", req: request{method: "PATCH", target: wh + "/entities/counter/cats"}, code: 404, empty: true},
		{name: "POST without key", req: request{method: "POST", target: wh + "/entities/counter?op=add"}, code: 404, empty: true, check: noSignal},
		{name: "POST without name", req: request{method: "POST", target: wh + "/entities"}, code: 404, empty: true},
		{name: "DELETE without key", req: request{method: "DELETE", target: wh + "/entities/counter"}, code: 404, empty: true, check: noSignal},
		{name: "DELETE of all", req: request{method: "DELETE", target: wh + "/entities"}, code: 404, empty: true},
		{name: "four segments", req: request{method: "POST", target: wh + "/entities/counter/cats/more"}, code: 404, empty: true, check: noSignal},
		{name: "GET four segments", req: request{target: wh + "/entities/counter/cats/more"}, code: 404, empty: true},
	}))
}

func TestEntitySignalTrace(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct {
		name        string
		header      map[string]string
		parent, st  string
		traceAbsent bool
	}{
		{name: "traceparent and tracestate", header: map[string]string{"traceparent": tp, "tracestate": "congo=t61rcWkgMzE"}, parent: tp, st: "congo=t61rcWkgMzE"},
		{name: "traceparent only", header: map[string]string{"traceparent": tp}, parent: tp},
		{name: "a later version with more fields", header: map[string]string{"traceparent": "01" + tp[2:] + "-extra"}, parent: "01" + tp[2:] + "-extra"},
		{name: "tracestate not UTF-8 dropped", header: map[string]string{"traceparent": tp, "tracestate": "a=\xff"}, parent: tp},
		{name: "none", traceAbsent: true},
		{name: "upper-case hex", header: map[string]string{"traceparent": strings.ToUpper(tp)}, traceAbsent: true},
		{name: "version ff", header: map[string]string{"traceparent": "ff" + tp[2:]}, traceAbsent: true},
		{name: "zero trace ID", header: map[string]string{"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"}, traceAbsent: true},
		{name: "version 00 with more fields", header: map[string]string{"traceparent": tp + "-x"}, traceAbsent: true},
		{name: "garbage", header: map[string]string{"traceparent": "hello"}, traceAbsent: true},
		{name: "huge", header: map[string]string{"traceparent": "01" + tp[2:] + "-" + strings.Repeat("x", 5000)}, traceAbsent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seeded()
			w := request{method: "POST", target: wh + "/entities/counter/cats?op=add", header: tc.header}.do(New(Options{Backend: f}))
			if w.Code != 202 {
				t.Fatalf("code %d: %s", w.Code, w.Body)
			}
			got := f.signalLog()[0].Trace
			switch {
			case tc.traceAbsent && got != nil:
				t.Errorf("trace %+v, want none", got)
			case !tc.traceAbsent && (got == nil || got.TraceParent != tc.parent || got.TraceState != tc.st || got.SpanID != ""):
				t.Errorf("trace %+v, want traceparent %q, tracestate %q", got, tc.parent, tc.st)
			}
		})
	}
}

func TestEntityList(t *testing.T) {
	ids := func(want ...string) func(*testing.T, *fakeBackend, *httptest.ResponseRecorder) {
		return func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
			t.Helper()
			var page []EntityStatus
			if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range page {
				got = append(got, s.EntityID.Name+"/"+s.EntityID.Key)
			}
			if !slices.Equal(got, want) {
				t.Errorf("entities %q, want %q", got, want)
			}
		}
	}
	last := map[string]string{"X-Ms-Continuation-Token": ""}
	existing := []string{"cart/Alice", "counter/", "counter/cats", "counter/dogs"}
	runRoutes(t, withEntities([]routeCase{
		{name: "all, without state", req: request{target: wh + "/entities"}, code: 200, header: last,
			body: `[{"entityId":{"name":"cart","key":"Alice"},"lastOperationTime":"2024-03-01T10:00:04Z","state":null},
				{"entityId":{"name":"counter","key":""},"lastOperationTime":"2024-03-01T10:00:06Z","state":null},
				{"entityId":{"name":"counter","key":"cats"},"lastOperationTime":"2024-03-01T10:00:01Z","state":null},
				{"entityId":{"name":"counter","key":"dogs"},"lastOperationTime":"2024-03-01T10:00:02Z","state":null}]`,
			check: func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
				if body := w.Body.String(); strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "]\n") {
					t.Errorf("the array is not one line: %q", body)
				}
				q := f.lastEntityQ
				if q.WithState || q.IncludeTransient || q.PageSize != 100 || q.MaxBytes != DefaultMaxPageBytes || q.Name != "" {
					t.Errorf("query %+v", q)
				}
			}},
		{name: "trailing slash", req: request{target: wh + "/entities/"}, code: 200, check: ids(existing...)},
		{name: "rpc base", req: request{target: RPCBase + "/entities", remote: "[::1]:9"}, code: 200, check: ids(existing...)},
		{name: "with state", req: request{target: wh + "/entities/counter?fetchState=true"}, code: 200, header: last,
			body: `[{"entityId":{"name":"counter","key":""},"lastOperationTime":"2024-03-01T10:00:06Z","state":0},
				{"entityId":{"name":"counter","key":"cats"},"lastOperationTime":"2024-03-01T10:00:01Z","state":5},
				{"entityId":{"name":"counter","key":"dogs"},"lastOperationTime":"2024-03-01T10:00:02Z","state":{"n":2}}]`},
		{name: "fetchState false", req: request{target: wh + "/entities/cart?fetchState=False"}, code: 200,
			body: `[{"entityId":{"name":"cart","key":"Alice"},"lastOperationTime":"2024-03-01T10:00:04Z","state":null}]`},
		{name: "name any case", req: request{target: wh + "/entities/COUNTER"}, code: 200, check: ids("counter/", "counter/cats", "counter/dogs")},
		{name: "unknown name", req: request{target: wh + "/entities/nothing"}, code: 200, body: `[]`, header: last},
		{name: "first page", req: request{target: wh + "/entities?top=3"}, code: 200,
			header: map[string]string{"X-Ms-Continuation-Token": "epos-3"}, check: ids(existing[:3]...)},
		{name: "next page", req: request{target: wh + "/entities?top=3", header: map[string]string{"x-ms-continuation-token": "epos-3"}}, code: 200,
			header: last, check: ids(existing[3:]...)},
		{name: "forged token", req: request{target: wh + "/entities", header: map[string]string{"x-ms-continuation-token": "epos-99"}}, code: 400,
			contains: []string{"invalid continuation token"}},
		{name: "last operation range", req: request{target: wh + "/entities?lastOperationTimeFrom=2024-03-01T10:00:02Z&lastOperationTimeTo=2024-03-01T10:00:05.000Z"},
			code: 200, check: ids("cart/Alice", "counter/dogs")},
		{name: "bad date", req: request{target: wh + "/entities?lastOperationTimeFrom=soon"}, code: 400, contains: []string{"'lastOperationTimeFrom'"}},
		{name: "date out of range", req: request{target: wh + "/entities?lastOperationTimeTo=9999-01-01"}, code: 400, contains: []string{"'lastOperationTimeTo'", "want a date from"}},
		{name: "top zero", req: request{target: wh + "/entities?top=0"}, code: 400, contains: []string{"'top'"}},
		{name: "top too big", req: request{target: wh + "/entities?top=1001"}, code: 400},
		{name: "fetchState not a boolean", req: request{target: wh + "/entities?fetchState=1"}, code: 400, contains: []string{"'fetchState'"}},
		{name: "name with slash", req: request{target: wh + "/entities/a%2Fb"}, code: 400, contains: []string{"must not contain"}},
		{name: "name with @", req: request{target: wh + "/entities/a@b"}, code: 400, contains: []string{"'@'"}},
		{name: "store broken", setup: func(f *fakeBackend) { f.failWith = errKind(KindOther, "boom") }, req: request{target: wh + "/entities"}, code: 500},
	}))
}

func TestEntityClean(t *testing.T) {
	admin := func(r *http.Request) bool { return r.URL.Query().Get("code") == "master" }
	system := func(r *http.Request) bool { c := r.URL.Query().Get("code"); return c == "system" || c == "master" }
	for _, tc := range []struct {
		name   string
		target string
		remote string
		code   int
		body   string
		cleans int // calls of CleanEntityStorage
		idle   time.Duration
	}{
		{name: "master key, both", target: wh + "/entities/$clean?removeEmptyEntities=true&releaseOrphanedLocks=true&code=master",
			code: 200, body: `{"emptyEntitiesRemoved":1,"orphanedLocksReleased":1}`, cleans: 3},
		{name: "escaped $", target: wh + "/entities/%24clean?removeEmptyEntities=true&code=master",
			code: 200, body: `{"emptyEntitiesRemoved":1,"orphanedLocksReleased":0}`, cleans: 3},
		{name: "release only", target: wh + "/entities/$clean?releaseOrphanedLocks=true&code=master",
			code: 200, body: `{"emptyEntitiesRemoved":0,"orphanedLocksReleased":1}`, cleans: 3},
		{name: "at once", target: wh + "/entities/$clean?removeEmptyEntities=true&idleSeconds=0&code=master",
			code: 200, cleans: 3, idle: -1},
		{name: "idle a minute", target: wh + "/entities/$clean?removeEmptyEntities=true&idleSeconds=60&code=master",
			code: 200, cleans: 3, idle: time.Minute},
		{name: "rpc base needs no key", target: RPCBase + "/entities/$clean?removeEmptyEntities=true", remote: "127.0.0.1:3",
			code: 200, cleans: 3},
		{name: "system key is not enough", target: wh + "/entities/$clean?removeEmptyEntities=true&code=system", code: 401,
			body: `{"Message":"` + adminMessage + `"}`},
		{name: "no key", target: wh + "/entities/$clean?removeEmptyEntities=true", code: 401},
		{name: "nothing to clean", target: wh + "/entities/$clean?code=master", code: 400},
		{name: "both false", target: wh + "/entities/$clean?removeEmptyEntities=false&releaseOrphanedLocks=false&code=master", code: 400},
		{name: "bad boolean", target: wh + "/entities/$clean?removeEmptyEntities=yes&code=master", code: 400},
		{name: "negative idle", target: wh + "/entities/$clean?removeEmptyEntities=true&idleSeconds=-1&code=master", code: 400},
		{name: "GET is a list by name", target: wh + "/entities/$clean?code=master", code: 200, body: `[]`},
		{name: "DELETE", target: wh + "/entities/$clean?code=master", code: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seeded()
			seedEntities(f)
			api := New(Options{Backend: f, Authorize: system, AuthorizeAdmin: admin})
			method := http.MethodPost
			if strings.HasPrefix(tc.name, "GET") {
				method = http.MethodGet
			} else if tc.name == "DELETE" {
				method = http.MethodDelete
			}
			w := request{method: method, target: tc.target, remote: tc.remote}.do(api)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if tc.body != "" && compact(t, w.Body.String()) != compact(t, tc.body) {
				t.Errorf("body %s, want %s", w.Body, tc.body)
			}
			if len(f.cleans) != tc.cleans {
				t.Fatalf("%d calls of CleanEntityStorage, want %d", len(f.cleans), tc.cleans)
			}
			// Six entities, two a page: the route follows the tokens through three pages.
			for i, c := range f.cleans {
				if c.IdleFor != tc.idle || (i == 0) != (c.ContinuationToken == "") {
					t.Errorf("call %d: %+v", i, c)
				}
			}
		})
	}
}

// TestInstanceRoutesDoNotSeeEntities: an entity's instance ID names no instance, for any route.
func TestInstanceRoutesDoNotSeeEntities(t *testing.T) {
	runRoutes(t, withEntities([]routeCase{
		{name: "status", req: request{target: wh + "/instances/@counter@cats"}, code: 404, empty: true},
		{name: "escaped", req: request{target: wh + "/instances/%40counter%40cats"}, code: 404, empty: true},
		{name: "purge", req: request{method: "DELETE", target: wh + "/instances/@counter@cats"}, code: 404, empty: true},
		{name: "terminate", req: request{method: "POST", target: wh + "/instances/@counter@cats/terminate"}, code: 404, empty: true},
		{name: "raise", req: request{method: "POST", target: wh + "/instances/@counter@cats/raiseEvent/x", header: jsonHeader, body: "1"}, code: 404, empty: true},
		{name: "list", req: request{target: wh + "/instances?instanceIdPrefix=@"}, code: 200, body: `[]`},
	}))
}
