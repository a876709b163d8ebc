package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// finishAs makes WaitForCompletion answer at once with the instance in the given state, after
// checking that it was given a deadline.
func finishAs(s store.Status, output string) func(*fakeBackend) {
	return func(f *fakeBackend) {
		f.wait = func(ctx context.Context, id string) (store.Instance, error) {
			if _, ok := ctx.Deadline(); !ok {
				return store.Instance{}, fmt.Errorf("WaitForCompletion without a deadline")
			}
			inst, err := f.GetInstance(ctx, id)
			if err != nil {
				return store.Instance{}, err
			}
			inst.Status, inst.Output = s, nil
			if output != "" {
				inst.Output = []byte(output)
			}
			return inst, nil
		}
	}
}

func TestWaitMode(t *testing.T) {
	start := func(q string) request {
		return request{method: "POST", target: wh + "/orchestrators/hello/w1?" + q, body: `{"n":1}`}
	}
	noLocation := func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
		if w.Header().Get("Location") != "" {
			t.Errorf("Location on a finished wait: %q", w.Header().Get("Location"))
		}
	}
	runRoutes(t, []routeCase{
		{name: "completed: the output alone", setup: finishAs(store.StatusCompleted, `["done", 1]`),
			req: start("timeout=30&pollingInterval=1"), code: 200, body: `["done",1]`, check: noLocation},
		{name: "completed without output", setup: finishAs(store.StatusCompleted, ""),
			req: start("timeout=30&pollingInterval=1"), code: 200, body: `null`},
		{name: "failed: the status", setup: finishAs(store.StatusFailed, `"it broke"`),
			req: start("timeout=30&pollingInterval=1"), code: 200,
			contains: []string{`"instanceId":"w1"`, `"runtimeStatus":"Failed"`, `"input":{"n":1}`, `"output":"it broke"`}, check: noLocation},
		{name: "failed with the 500 flag", setup: finishAs(store.StatusFailed, `"it broke"`),
			req: start("timeout=30&pollingInterval=1&returnInternalServerErrorOnFailure=true"), code: 500,
			contains: []string{`"runtimeStatus":"Failed"`}},
		{name: "terminated: the status", setup: finishAs(store.StatusTerminated, `"stop"`),
			req: start("timeout=30&pollingInterval=1"), code: 200, contains: []string{`"runtimeStatus":"Terminated"`}},
		{name: "canceled: the status", setup: finishAs(store.StatusCanceled, ""),
			req: start("timeout=30&pollingInterval=1"), code: 200, contains: []string{`"runtimeStatus":"Canceled"`}},
		{name: "still running at the deadline", // the fake blocks until the context ends
			req: start("timeout=0.001&pollingInterval=0"), code: 202, header: map[string]string{"Retry-After": "10"},
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				if b := decodeCheckStatus(t, w); b.ID != "w1" {
					t.Errorf("id %q", b.ID)
				}
			}},
		{name: "backend reports the deadline itself", setup: func(f *fakeBackend) {
			f.wait = func(context.Context, string) (store.Instance, error) {
				return store.Instance{}, fmt.Errorf("wait: %w", context.DeadlineExceeded)
			}
		}, req: start("timeout=30&pollingInterval=1"), code: 202},
		{name: "backend error", setup: func(f *fakeBackend) {
			f.wait = func(context.Context, string) (store.Instance, error) {
				return store.Instance{}, errKind(KindNotFound, "purged meanwhile")
			}
		}, req: start("timeout=30&pollingInterval=1"), code: 404, empty: true},
		{name: "interval equal to timeout", setup: finishAs(store.StatusCompleted, `1`),
			req: start("timeout=2&pollingInterval=2"), code: 200, body: `1`},
		{name: "restart and wait", setup: finishAs(store.StatusCompleted, `"again"`),
			req: request{method: "POST", target: wh + "/instances/done1/restart?timeout=5&pollingInterval=1"}, code: 200, body: `"again"`},
		{name: "restart, still running", req: request{method: "POST", target: wh + "/instances/done1/restart?timeout=0&pollingInterval=0"}, code: 202},
	})
}

func TestWriteWaitOrCheckStatus(t *testing.T) {
	f := seeded()
	api := New(Options{Backend: f})
	call := func(id string, timeout, interval time.Duration) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		api.WriteWaitOrCheckStatus(w, httptest.NewRequest("POST", "/api/start", nil), id, timeout, interval)
		return w
	}
	if w := call("done1", time.Second, 2*time.Second); w.Code != 400 {
		t.Errorf("interval over timeout: %d %s", w.Code, w.Body)
	}
	if w := call("done1", time.Minute, time.Second); w.Code != 200 || w.Body.String() != `["Hello Tokyo!"]` {
		t.Errorf("completed: %d %s", w.Code, w.Body)
	}
	if w := call("run1", time.Millisecond, 0); w.Code != 202 || decodeCheckStatus(t, w).ID != "run1" {
		t.Errorf("running: %d %s", w.Code, w.Body)
	}
	if w := call("nope", time.Minute, time.Second); w.Code != 404 {
		t.Errorf("not found: %d %s", w.Code, w.Body)
	}
}

// TestCallerGone: when the caller has gone, a canceled backend call is no server error to log.
func TestCallerGone(t *testing.T) {
	f := seeded()
	f.failWith = context.Canceled
	var logs strings.Builder
	api := New(Options{Backend: f, Logger: slogTo(&logs)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", wh+"/instances/done1", nil)
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	if w.Code != 503 || logs.Len() != 0 {
		t.Errorf("code %d, logs %q", w.Code, logs.String())
	}
}

// TestNilBody: a hand-built request without a body starts with null input.
func TestNilBody(t *testing.T) {
	f := seeded()
	r := httptest.NewRequest("POST", wh+"/orchestrators/hello", nil)
	r.Body = nil
	w := httptest.NewRecorder()
	New(Options{Backend: f}).ServeHTTP(w, r)
	if w.Code != 202 || string(f.lastStart) != "null" {
		t.Errorf("code %d, input %s", w.Code, f.lastStart)
	}
}
