package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reprise-dev/reprise/internal/history"
)

// exportedHistory is a history with every kind of field replay needs: sequence numbers, the
// bookkeeping events, a patch marker.
func exportedHistory() []history.Event {
	start := history.New(history.OrchestratorStarted, baseTime)
	exec := history.New(history.ExecutionStarted, baseTime)
	exec.Name, exec.Input, exec.ExecutionID = "orch", json.RawMessage(`{"n":1}`), "e1"
	marker := history.New(history.PatchApplied, baseTime)
	marker.Name = "send-receipt"
	sched := history.New(history.TaskScheduled, baseTime)
	sched.ID, sched.Name, sched.Attempt = 0, "say", 1
	return []history.Event{start, exec, marker, sched}
}

func TestExportHistoryRoute(t *testing.T) {
	want := exportedHistory()
	runRoutes(t, []routeCase{
		{name: "lossless history", setup: func(f *fakeBackend) { f.histories["run1"] = want },
			req: request{target: wh + "/instances/run1/history"}, code: 200,
			check: func(t *testing.T, _ *fakeBackend, w *httptest.ResponseRecorder) {
				var got []history.Event
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("body is not an exported history: %v\n%s", err, w.Body)
				}
				exp, _ := history.Export(want)
				if string(exp)+"\n" != w.Body.String() {
					t.Errorf("body differs from history.Export:\n%s\nwant\n%s", w.Body, exp)
				}
				if len(got) != 4 || got[0].Type != history.OrchestratorStarted || got[2].Type != history.PatchApplied || got[3].ID != 0 {
					t.Errorf("events %+v: the export must keep every event and its sequence number", got)
				}
			}},
		{name: "case-insensitive segment", setup: func(f *fakeBackend) { f.histories["run1"] = want },
			req: request{target: wh + "/instances/run1/History"}, code: 200, contains: []string{`"send-receipt"`}},
		{name: "no history yet", req: request{target: wh + "/instances/pend1/history"}, code: 200, body: `[]`},
		{name: "unknown instance", req: request{target: wh + "/instances/nope/history"}, code: 404, empty: true},
		{name: "POST is no route", req: request{method: "POST", target: wh + "/instances/run1/history"}, code: 404, empty: true},
	})
}

func TestExportHistoryNeedsTheKey(t *testing.T) {
	f := seeded()
	api := New(Options{Backend: f, Authorize: func(r *http.Request) bool { return r.Header.Get("x-functions-key") == "k" }})
	if w := (request{target: wh + "/instances/run1/history"}).do(api); w.Code != 401 {
		t.Fatalf("without the key: %d, want 401", w.Code)
	}
	if w := (request{target: wh + "/instances/run1/history", header: map[string]string{"x-functions-key": "k"}}).do(api); w.Code != 200 {
		t.Fatalf("with the key: %d %s, want 200", w.Code, w.Body)
	}
}

func TestShowHistoryNamesThePatch(t *testing.T) {
	got := transformHistory(exportedHistory(), StatusOptions{})
	if len(got) != 3 || got[1].EventType != "PatchApplied" || got[1].Name != "send-receipt" {
		t.Fatalf("historyEvents %+v, want the PatchApplied event with its name", got)
	}
}
