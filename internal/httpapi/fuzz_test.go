package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

var fuzzMethods = [...]string{"GET", "POST", "DELETE", "PUT", "HEAD", "PATCH", "OPTIONS"}
var fuzzBases = [...]string{WebhookBase, RPCBase, "", "/runtime/webhooks"}

// FuzzRoute throws arbitrary requests at the handler. With a backend that never fails, the
// handler must not panic, must not answer 5xx, and must answer either an
// empty body without Content-Type or valid JSON with the JSON Content-Type.
func FuzzRoute(f *testing.F) {
	seeds := []struct {
		method, base byte
		path, query  string
		body         string
		contentType  string
		token        string
	}{
		{0, 0, "/instances/done1", "showHistory=true&showHistoryOutput=True&showInput=false", "", "", ""},
		{0, 1, "/instances/", "top=2&runtimeStatus=Running,Completed&createdTimeFrom=2024-01-01", "", "", "pos-2"},
		{0, 0, "/instances", "top=0", "", "", "garbage"},
		{1, 0, "/orchestrators/hello/x1", "timeout=1&pollingInterval=0.5", `{"a":[1,2]}`, "", ""},
		{1, 0, "/orchestrators/hello/a%2Fb", "", `{`, "", ""},
		{1, 0, "/orchestrators/nope", "", ``, "", ""},
		{1, 0, "/instances/run1/raiseEvent/go", "", `{"x":1}`, "application/json; charset=utf-8", ""},
		{1, 0, "/instances/run1/raiseEvent/go", "", `{"x":1}`, "text/plain", ""},
		{1, 0, "/instances/run1/terminate", "reason=%zz;+x", "", "", ""},
		{1, 0, "/instances/done1/rewind", "", "", "", ""},
		{1, 0, "/instances/done1/restart", "restartWithNewInstanceId=false&timeout=0&pollingInterval=0", "", "", ""},
		{2, 0, "/instances", "createdTimeFrom=2024-01-01&runtimeStatus=Completed", "", "", ""},
		{2, 0, "/instances/run1", "", "", "", ""},
		{1, 0, "/entities/counter/cats", "op=add", "1", "", ""},
		{1, 1, "/entities/Counter/cats", "op=add", `{"n":1}`, "application/json", ""},
		{1, 0, "/entities/counter/%24", "op=set", "text", "text/plain", ""},
		{1, 0, "/entities/counter/a%2Fb", "op=add", "{", "application/json", ""},
		{2, 0, "/entities/counter/cats", "", "", "", ""},
		{0, 0, "/entities/counter/cats", "detail=true", "", "", ""},
		{0, 0, "/entities/counter/%24", "", "", "", ""},
		{0, 0, "/entities", "fetchState=true&top=1&lastOperationTimeFrom=2024-03-01", "", "", "epos-1"},
		{0, 1, "/entities/counter", "lastOperationTimeTo=9999-99-99", "", "", "forged"},
		{1, 0, "/entities/$clean", "removeEmptyEntities=true&releaseOrphanedLocks=true&idleSeconds=0", "", "", ""},
		{3, 0, "/makeprimary", "", "", "", ""},
		{0, 0, "//instances///", "SHOWINPUT=tRuE", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.base, s.path, s.query, []byte(s.body), s.contentType, s.token)
	}
	f.Fuzz(func(t *testing.T, method, base byte, path, query string, body []byte, contentType, token string) {
		fb := seeded()
		// Wait mode must not block the fuzzer: finished instances come back at once, running
		// ones time out at once.
		fb.wait = func(ctx context.Context, id string) (store.Instance, error) {
			inst, err := fb.GetInstance(ctx, id)
			if err != nil || inst.Status.Terminal() {
				return inst, err
			}
			return store.Instance{}, context.DeadlineExceeded
		}
		// No Failed instance: a Failed status with returnInternalServerErrorOnFailure is a 500 by design.
		delete(fb.instances, "fail1")
		seedEntities(fb)
		api := New(Options{Backend: fb, MaxBodyBytes: 1 << 10})

		u, err := url.Parse(fuzzBases[int(base)%len(fuzzBases)] + path)
		if err != nil {
			t.Skip()
		}
		u.RawQuery = query
		r := &http.Request{
			Method:     fuzzMethods[int(method)%len(fuzzMethods)],
			URL:        u,
			Host:       "127.0.0.1:7071",
			Header:     http.Header{},
			Body:       io.NopCloser(bytes.NewReader(body)),
			RemoteAddr: "127.0.0.1:40000",
		}
		r = r.WithContext(context.Background())
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			r.Header.Set(continuationHeader, token)
		}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)

		out := w.Body.Bytes()
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s: %d %s", r.Method, u.Path, query, w.Code, out)
		}
		ct := w.Header().Get("Content-Type")
		switch {
		case len(out) == 0 && ct != "":
			t.Fatalf("empty body with Content-Type %q", ct)
		case len(out) > 0 && (ct != jsonContentType || !json.Valid(out)):
			t.Fatalf("body %q with Content-Type %q", out, ct)
		}
		if w.Code == http.StatusAccepted && len(out) > 0 && w.Header().Get("Location") == "" {
			t.Fatalf("202 answer without Location: %s", out)
		}
	})
}
