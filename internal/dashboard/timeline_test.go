package dashboard

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestTimelineOfAFinishedExecution(t *testing.T) {
	inst := store.Instance{ID: "p", Status: store.StatusCompleted, CreatedAt: t0.Add(-time.Second), UpdatedAt: at(500)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0)},
		{ID: 0, Type: history.TaskScheduled, Time: at(10), Name: "charge", Attempt: 1, Input: []byte(`{ "amount": 12,
			"currency": "EUR" }`)},
		{ID: -1, Type: history.TaskFailed, Time: at(20), TaskID: 0, Failure: &history.Failure{Message: "card declined"}},
		{ID: 1, Type: history.TimerCreated, Time: at(20), FireAt: at(120), Retry: "Retry Attempt 1"},
		{ID: -1, Type: history.TimerFired, Time: at(121), TaskID: 1, FireAt: at(120)},
		{ID: 2, Type: history.TaskScheduled, Time: at(122), Name: "charge", Attempt: 2},
		{ID: -1, Type: history.TaskCompleted, Time: at(130), TaskID: 2},
		{ID: 3, Type: history.SubOrchestrationInstanceCreated, Time: at(131), Name: "ship", InstanceID: "p:3"},
		{ID: 4, Type: history.TimerCreated, Time: at(131), FireAt: at(10_000)}, // a timeout that never fired
		{ID: -1, Type: history.EventRaised, Time: at(200), Name: "approval"},
		{ID: 5, Type: history.EventSent, Time: at(210), Name: "shipped", InstanceID: "other"},
		{ID: -1, Type: history.SubOrchestrationInstanceCompleted, Time: at(300), TaskID: 3},
		{ID: -1, Type: history.ExecutionCompleted, Time: at(310), Status: int(store.StatusCompleted)},
	}
	tl := BuildTimeline(inst, events)
	if tl.Start != timeText(at(0)) || tl.End != timeText(at(310)) {
		t.Errorf("start %s end %s", tl.Start, tl.End)
	}
	want := []Span{
		{Kind: SpanActivity, Name: "charge", State: StateFailed, Start: timeText(at(10)), End: timeText(at(20)), TaskID: 0, Attempt: 1, Error: "card declined",
			Input: `{"amount":12,"currency":"EUR"}`, Summary: `amount: 12, currency: "EUR"`},
		{Kind: SpanTimer, Name: "Retry Attempt 1", State: StateCompleted, Start: timeText(at(20)), End: timeText(at(121)), TaskID: 1, FireAt: timeText(at(120))},
		{Kind: SpanActivity, Name: "charge", State: StateCompleted, Start: timeText(at(122)), End: timeText(at(130)), TaskID: 2, Attempt: 2},
		{Kind: SpanSubOrchestration, Name: "ship", State: StateCompleted, Start: timeText(at(131)), End: timeText(at(300)), TaskID: 3, InstanceID: "p:3"},
		{Kind: SpanTimer, Name: "timer", State: StateAbandoned, Start: timeText(at(131)), End: timeText(at(310)), TaskID: 4, FireAt: timeText(at(10_000))},
	}
	if !reflect.DeepEqual(tl.Spans, want) {
		t.Errorf("spans:\n got %+v\nwant %+v", tl.Spans, want)
	}
	wantMarks := []Mark{
		{Kind: "EventRaised", Time: timeText(at(200)), Name: "approval"},
		{Kind: "EventSent", Time: timeText(at(210)), Name: "shipped", InstanceID: "other"},
		{Kind: "ExecutionCompleted", Time: timeText(at(310)), Name: "Completed"},
	}
	if !reflect.DeepEqual(tl.Marks, wantMarks) {
		t.Errorf("marks:\n got %+v\nwant %+v", tl.Marks, wantMarks)
	}
}

// TestSpanInputPreview: inputs are shown compact, cut on a character boundary, and not at all
// when absent or null.
func TestSpanInputPreview(t *testing.T) {
	long := `"` + strings.Repeat("é", 150) + `"` // 302 bytes
	for in, want := range map[string]string{
		"":         "",
		"null":     "",
		`[ 1, 2 ]`: "[1,2]",
		`"Tokyo"`:  `"Tokyo"`,
		"not json": "not json",
		long:       long[:199] + "…", // 1 + 99 two-byte runes: the cut does not split one
	} {
		if got := preview([]byte(in)); got != want {
			t.Errorf("preview(%.20q) = %.40q, want %.40q", in, got, want)
		}
	}
}

func TestTimelineOfARunningExecution(t *testing.T) {
	inst := store.Instance{ID: "r", Status: store.StatusRunning, CreatedAt: at(0), UpdatedAt: at(50)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(1)},
		{ID: 0, Type: history.TaskScheduled, Time: at(10), Name: "slow"},
		{ID: -1, Type: history.ExecutionSuspended, Time: at(20)},
		{ID: -1, Type: history.ExecutionResumed, Time: at(30)},
	}
	tl := BuildTimeline(inst, events)
	if tl.End != "" {
		t.Errorf("an active execution has no end: %q", tl.End)
	}
	if len(tl.Spans) != 1 || tl.Spans[0].State != StateRunning || tl.Spans[0].End != "" {
		t.Errorf("open activity: %+v", tl.Spans)
	}
	if len(tl.Marks) != 2 || tl.Marks[0].Kind != "ExecutionSuspended" || tl.Marks[1].Kind != "ExecutionResumed" {
		t.Errorf("marks %+v", tl.Marks)
	}
}

func TestTimelineOfATerminatedExecution(t *testing.T) {
	inst := store.Instance{ID: "x", Status: store.StatusTerminated, CreatedAt: at(0), UpdatedAt: at(99)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0)},
		{ID: 0, Type: history.SubOrchestrationInstanceCreated, Time: at(5), Name: "child", InstanceID: "x:0"},
		{ID: -1, Type: history.ExecutionTerminated, Time: at(40)},
	}
	tl := BuildTimeline(inst, events)
	if tl.End != timeText(at(40)) {
		t.Errorf("end %q, want the terminate time", tl.End)
	}
	if s := tl.Spans[0]; s.State != StateAbandoned || s.End != tl.End || s.InstanceID != "x:0" {
		t.Errorf("span %+v", s)
	}
	if len(tl.Marks) != 1 || tl.Marks[0].Kind != "ExecutionTerminated" {
		t.Errorf("marks %+v", tl.Marks)
	}
}

// After a rewind a task is scheduled again with the same ID: each scheduling gets its own bar,
// closed by its own completion.
func TestTimelineAfterRewind(t *testing.T) {
	inst := store.Instance{ID: "w", Status: store.StatusCompleted, CreatedAt: at(0), UpdatedAt: at(100)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0)},
		{ID: 0, Type: history.TaskScheduled, Time: at(1), Name: "flaky"},
		{ID: -1, Type: history.TaskFailed, Time: at(2), TaskID: 0, Failure: &history.Failure{Message: "no"}},
		{ID: -1, Type: history.ExecutionRewound, Time: at(50)},
		{ID: 0, Type: history.TaskScheduled, Time: at(51), Name: "flaky"},
		{ID: -1, Type: history.TaskCompleted, Time: at(60), TaskID: 0},
		{ID: -1, Type: history.TaskCompleted, Time: at(61), TaskID: 7}, // no scheduling event: ignored
	}
	tl := BuildTimeline(inst, events)
	if len(tl.Spans) != 2 || tl.Spans[0].State != StateFailed || tl.Spans[1].State != StateCompleted || tl.Spans[1].End != timeText(at(60)) {
		t.Errorf("spans %+v", tl.Spans)
	}
	if tl.End != timeText(at(100)) {
		t.Errorf("end %q: without a final event the instance's update time", tl.End)
	}
}

func TestTimelineWithoutHistory(t *testing.T) {
	tl := BuildTimeline(store.Instance{Status: store.StatusPending, CreatedAt: t0}, nil)
	if tl.Start != timeText(t0) || tl.End != "" || tl.Spans == nil || tl.Marks == nil {
		t.Errorf("%+v", tl)
	}
}

// TestSpanInputSummary: a bar's label tells apart inputs that are structs: their first fields, in
// the order written, nested values elided, within about one line.
func TestSpanInputSummary(t *testing.T) {
	for in, want := range map[string]string{
		"":        "",
		" null ":  "",
		`"Tokyo"`: `"Tokyo"`,
		`42`:      "42",
		`true`:    "true",
		`{}`:      "{}",
		`[]`:      "[]",
		`{"zone": "eu", "city": "Paris", "n": 1.5}`:                                                       `zone: "eu", city: "Paris", n: 1.5`,
		`{"order": {"id": 7}, "items": [1, 2, 3], "note": null}`:                                          `order: {…}, items: […3], note: null`,
		`[1, "two", {"x": 3}, []]`:                                                                        `[1, "two", {…}, []]`,
		`{"customer": "` + strings.Repeat("a", 40) + `", "region": "north", "tier": "gold", "id": 12345}`: `customer: "` + strings.Repeat("a", 24) + `…", region: "north", …`,
		"not json":              "not json",
		strings.Repeat("ü", 60): strings.Repeat("ü", 24) + "…", // not JSON, cut on a character boundary
	} {
		if got := summarize([]byte(in)); got != want {
			t.Errorf("summarize(%.40q) = %q, want %q", in, got, want)
		}
	}
	// Two calls of one activity with struct inputs get different labels.
	a := summarize([]byte(`{"customer":"acme","region":"north","items":[1,2]}`))
	b := summarize([]byte(`{"customer":"initech","region":"north","items":[1,2]}`))
	if a == b {
		t.Errorf("both inputs summarize to %q", a)
	}
}

// TestTimelineNamesTimeoutTimers: the timer of a WaitForEvent with a timeout says whose timeout it
// is; the event it waits for cancels it (a canceled bar), and a timeout that fires completes it.
func TestTimelineNamesTimeoutTimers(t *testing.T) {
	inst := store.Instance{ID: "t", Status: store.StatusRunning, CreatedAt: at(0), UpdatedAt: at(100)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0)},
		{ID: 0, Type: history.TimerCreated, Time: at(1), FireAt: at(1001), TimeoutOf: "approval"},
		{ID: -1, Type: history.EventRaised, Time: at(5), Name: "other"},
		{ID: -1, Type: history.EventRaised, Time: at(10), Name: "Approval"}, // names are case-insensitive
		{ID: 1, Type: history.TimerCreated, Time: at(10), FireAt: at(20), TimeoutOf: "second"},
		{ID: -1, Type: history.TimerFired, Time: at(21), TaskID: 1, FireAt: at(20)},
		{ID: -1, Type: history.EventRaised, Time: at(30), Name: "second"}, // too late: the timer fired
		{ID: 2, Type: history.TimerCreated, Time: at(30), FireAt: at(40)},
	}
	tl := BuildTimeline(inst, events)
	want := []Span{
		{Kind: SpanTimer, Name: "timeout of approval", State: StateCanceled, Start: timeText(at(1)), End: timeText(at(10)), TaskID: 0, FireAt: timeText(at(1001)), TimeoutOf: "approval"},
		{Kind: SpanTimer, Name: "timeout of second", State: StateCompleted, Start: timeText(at(10)), End: timeText(at(21)), TaskID: 1, FireAt: timeText(at(20)), TimeoutOf: "second"},
		{Kind: SpanTimer, Name: "timer", State: StateRunning, Start: timeText(at(30)), TaskID: 2, FireAt: timeText(at(40))},
	}
	if !reflect.DeepEqual(tl.Spans, want) {
		t.Errorf("spans:\n got %+v\nwant %+v", tl.Spans, want)
	}
}

// TestHistoryRows: the history table has one row per event (bookkeeping left out), completions
// named after what they complete, and the payloads compact and bounded.
func TestHistoryRows(t *testing.T) {
	big := `"` + strings.Repeat("b", dataLimit) + `"`
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0), Name: "order", Input: []byte(`{ "id": 7 }`), Parent: &history.Parent{InstanceID: "p"}},
		{ID: -1, Type: history.OrchestratorStarted, Time: at(0)},
		{ID: 0, Type: history.TaskScheduled, Time: at(1), Name: "charge", Attempt: 1, Input: []byte(big)},
		{ID: -1, Type: history.TaskFailed, Time: at(2), TaskID: 0, Failure: &history.Failure{Type: "Error", Message: "declined"}},
		{ID: 1, Type: history.TimerCreated, Time: at(2), FireAt: at(12), Retry: "Retry Attempt 1"},
		{ID: -1, Type: history.TimerFired, Time: at(12), TaskID: 1, FireAt: at(12)},
		{ID: 2, Type: history.TimerCreated, Time: at(13), FireAt: at(99), TimeoutOf: "approval"},
		{ID: -1, Type: history.EventRaised, Time: at(14), Name: "approval", Input: []byte(`true`)},
		{ID: 3, Type: history.SubOrchestrationInstanceCreated, Time: at(15), Name: "ship", InstanceID: "p:3"},
		{ID: -1, Type: history.SubOrchestrationInstanceCompleted, Time: at(16), TaskID: 3, Result: []byte(`null`)},
		{ID: -1, Type: history.ExecutionSuspended, Time: at(17), Input: []byte(`"maintenance"`)},
		{ID: -1, Type: history.OrchestratorCompleted, Time: at(17)},
		{ID: -1, Type: history.ExecutionCompleted, Time: at(18), Status: int(store.StatusCompleted), Result: []byte(`[1, 2]`)},
	}
	id := func(n int32) *int32 { return &n }
	want := []HistoryRow{
		{ID: -1, Type: "ExecutionStarted", Time: timeText(at(0)), Name: "order", InstanceID: "p", Data: `{"id":7}`},
		{ID: 0, Type: "TaskScheduled", Time: timeText(at(1)), Name: "charge", Attempt: 1, Data: big[:dataLimit] + "…", DataCut: true},
		{ID: -1, Type: "TaskFailed", Time: timeText(at(2)), Name: "charge", TaskID: id(0), Error: &history.Failure{Type: "Error", Message: "declined"}},
		{ID: 1, Type: "TimerCreated", Time: timeText(at(2)), Name: "Retry Attempt 1", FireAt: timeText(at(12)), Retry: "Retry Attempt 1"},
		{ID: -1, Type: "TimerFired", Time: timeText(at(12)), Name: "Retry Attempt 1", TaskID: id(1), FireAt: timeText(at(12))},
		{ID: 2, Type: "TimerCreated", Time: timeText(at(13)), Name: "timeout of approval", FireAt: timeText(at(99)), TimeoutOf: "approval"},
		{ID: -1, Type: "EventRaised", Time: timeText(at(14)), Name: "approval", Data: "true"},
		{ID: 3, Type: "SubOrchestrationInstanceCreated", Time: timeText(at(15)), Name: "ship", InstanceID: "p:3"},
		{ID: -1, Type: "SubOrchestrationInstanceCompleted", Time: timeText(at(16)), Name: "ship", TaskID: id(3)},
		{ID: -1, Type: "ExecutionSuspended", Time: timeText(at(17)), Reason: "maintenance"},
		{ID: -1, Type: "ExecutionCompleted", Time: timeText(at(18)), Name: "Completed", Data: "[1,2]"},
	}
	got := HistoryRows(events)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// A re-run recorded without a scheduling event of its own (histories written before the engine
// recorded re-runs as scheduled again) gets a bar from the rewind to its completion.
func TestTimelineRerunWithoutSchedulingEvent(t *testing.T) {
	inst := store.Instance{ID: "w", Status: store.StatusCompleted, CreatedAt: at(0), UpdatedAt: at(100)}
	events := []history.Event{
		{ID: -1, Type: history.ExecutionStarted, Time: at(0)},
		{ID: 0, Type: history.TaskScheduled, Time: at(1), Name: "flaky", Input: []byte(`"x"`)},
		{ID: -1, Type: history.TaskFailed, Time: at(2), TaskID: 0, Failure: &history.Failure{Message: "no"}},
		{ID: -1, Type: history.ExecutionCompleted, Time: at(3), Status: int(store.StatusFailed)},
		{ID: -1, Type: history.ExecutionRewound, Time: at(50), Voided: []int32{0}},
		{ID: -1, Type: history.TaskCompleted, Time: at(60), TaskID: 0},
		{ID: -1, Type: history.ExecutionCompleted, Time: at(70), Status: int(store.StatusCompleted)},
	}
	tl := BuildTimeline(inst, events)
	if len(tl.Spans) != 2 {
		t.Fatalf("spans %+v, want the failed attempt and the re-run", tl.Spans)
	}
	if s := tl.Spans[1]; s.Name != "flaky" || s.Input != `"x"` || s.State != StateCompleted || s.Start != timeText(at(50)) || s.End != timeText(at(60)) || s.Error != "" {
		t.Errorf("re-run span %+v", s)
	}
	if tl.End != timeText(at(70)) {
		t.Errorf("end %q, want the final completion", tl.End)
	}
}
