package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// at returns baseTime plus ms milliseconds and a few nanoseconds, so fractions show.
func at(ms int) time.Time { return baseTime.Add(time.Duration(ms)*time.Millisecond + 700) }

func ev(t history.Type, ms int, set func(*history.Event)) history.Event {
	e := history.New(t, at(ms))
	if set != nil {
		set(&e)
	}
	return e
}

// goldenHistory is a run of every common event kind, as the engine records it.
func goldenHistory() []history.Event {
	return []history.Event{
		ev(history.OrchestratorStarted, 0, nil),
		ev(history.ExecutionStarted, 0, func(e *history.Event) {
			e.Name, e.Input, e.InstanceID, e.ExecutionID = "hello", json.RawMessage(`{"city":"Tokyo"}`), "done1", "exec1"
		}),
		ev(history.TaskScheduled, 10, func(e *history.Event) {
			e.ID, e.Name, e.Input, e.Attempt = 0, "say_hello", json.RawMessage(`"Tokyo"`), 1
		}),
		ev(history.OrchestratorCompleted, 11, nil),
		ev(history.OrchestratorStarted, 20, nil),
		ev(history.TaskCompleted, 20, func(e *history.Event) { e.TaskID, e.Result = 0, json.RawMessage(`"Hello Tokyo!"`) }),
		ev(history.TimerCreated, 21, func(e *history.Event) { e.ID, e.FireAt = 1, baseTime.Add(time.Hour) }),
		ev(history.OrchestratorCompleted, 22, nil),
		ev(history.TimerFired, 3600000, func(e *history.Event) { e.TaskID, e.FireAt = 1, baseTime.Add(time.Hour) }),
		ev(history.EventRaised, 3600001, func(e *history.Event) { e.Name, e.Input = "approval", json.RawMessage(`{"ok":true}`) }),
		ev(history.TaskScheduled, 3600002, func(e *history.Event) { e.ID, e.Name, e.Input = 2, "charge", json.RawMessage(`42`) }),
		ev(history.TaskFailed, 3600050, func(e *history.Event) {
			e.TaskID = 2
			e.Failure = &history.Failure{Type: "PaymentError", Message: "card declined", Details: json.RawMessage(`{"code":51}`),
				StackTrace: "charge.go:12", NonRetriable: true, Inner: &history.Failure{Type: "io.EOF", Message: "EOF"}}
		}),
		ev(history.SubOrchestrationInstanceCreated, 3600051, func(e *history.Event) {
			e.ID, e.Name, e.InstanceID, e.Input = 3, "child", "done1:3", json.RawMessage(`[1,2]`)
		}),
		ev(history.SubOrchestrationInstanceCompleted, 3600100, func(e *history.Event) { e.TaskID, e.Result = 3, json.RawMessage(`{"sum":3}`) }),
		ev(history.TaskScheduled, 3600101, func(e *history.Event) { e.ID, e.Name = 4, "never_done" }),
		ev(history.ExecutionCompleted, 3600102, func(e *history.Event) {
			e.Status, e.Result = int(store.StatusCompleted), json.RawMessage(`["Hello Tokyo!"]`)
		}),
	}
}

// TestHistoryGolden compares the transformed history with hand-written expectations in testdata,
// byte for byte after compacting, so key order counts too.
func TestHistoryGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts StatusOptions
	}{
		{"history_full.json", StatusOptions{ShowInput: true, ShowHistoryOutput: true}},
		{"history_bare.json", StatusOptions{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(transformHistory(goldenHistory(), tc.opts)); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := compact(t, got.String()), compact(t, string(want)); g != w {
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, got.Bytes(), "", "  ")
				t.Errorf("history differs from testdata/%s; got:\n%s", tc.file, pretty.String())
			}
		})
	}
}

func TestHistoryControlEvents(t *testing.T) {
	reason := json.RawMessage(`"maintenance"`)
	events := []history.Event{
		ev(history.TaskScheduled, 0, func(e *history.Event) { e.ID, e.Name = 0, "flaky" }),
		ev(history.TaskFailed, 1, func(e *history.Event) { e.TaskID, e.Failure = 0, &history.Failure{Message: "first"} }),
		ev(history.ExecutionSuspended, 2, func(e *history.Event) { e.Input = reason }),
		ev(history.ExecutionResumed, 3, func(e *history.Event) { e.Input = reason }),
		ev(history.ExecutionRewound, 4, func(e *history.Event) { e.Input = json.RawMessage(`"fixed"`) }),
		// Scheduled again under the same ID after the rewind: pairs with its own completion.
		ev(history.TaskScheduled, 5, func(e *history.Event) { e.ID, e.Name, e.Input = 0, "flaky", json.RawMessage(`"again"`) }),
		ev(history.TaskCompleted, 6, func(e *history.Event) { e.TaskID, e.Result = 0, json.RawMessage(`1`) }),
		ev(history.EventSent, 7, func(e *history.Event) {
			e.ID, e.Name, e.InstanceID, e.Input = 1, "ping", "other", json.RawMessage(`{}`)
		}),
		ev(history.ExecutionTerminated, 8, func(e *history.Event) { e.Input = json.RawMessage(`"enough"`) }),
	}
	got := transformHistory(events, StatusOptions{ShowInput: true, ShowHistoryOutput: true})
	want := []HistoryEvent{
		{EventType: "TaskFailed", FunctionName: "flaky", Reason: "first", FailureDetails: &FailureDetails{ErrorMessage: "first"},
			ScheduledTime: historyTime(at(0)), Timestamp: historyTime(at(1))},
		{EventType: "ExecutionSuspended", Reason: "maintenance", Timestamp: historyTime(at(2))},
		{EventType: "ExecutionResumed", Reason: "maintenance", Timestamp: historyTime(at(3))},
		{EventType: "ExecutionRewound", Reason: "fixed", Timestamp: historyTime(at(4))},
		{EventType: "TaskCompleted", FunctionName: "flaky", Input: json.RawMessage(`"again"`), Result: json.RawMessage(`1`),
			ScheduledTime: historyTime(at(5)), Timestamp: historyTime(at(6))},
		{EventType: "EventSent", Name: "ping", InstanceID: "other", Input: json.RawMessage(`{}`), Timestamp: historyTime(at(7))},
		{EventType: "ExecutionTerminated", Input: json.RawMessage(`"enough"`), Timestamp: historyTime(at(8))},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestHistoryEmptyIsNotNil(t *testing.T) {
	data, _ := json.Marshal(StatusPayload(store.Instance{Status: store.StatusRunning}, []history.Event{}, StatusOptions{}))
	if !bytes.Contains(data, []byte(`"historyEvents":[]`)) {
		t.Errorf("empty history not shown: %s", data)
	}
	data, _ = json.Marshal(StatusPayload(store.Instance{Status: store.StatusRunning}, []history.Event{
		ev(history.OrchestratorStarted, 0, nil), ev(history.OrchestratorCompleted, 1, nil),
	}, StatusOptions{}))
	if !bytes.Contains(data, []byte(`"historyEvents":[]`)) {
		t.Errorf("history of bookkeeping events only: %s", data)
	}
	data, _ = json.Marshal(StatusPayload(store.Instance{Status: store.StatusPending}, goldenHistory(), StatusOptions{}))
	if bytes.Contains(data, []byte(`historyEvents`)) {
		t.Errorf("history of a Pending instance: %s", data)
	}
}

// A re-run recorded without a scheduling event of its own (histories written before the engine
// recorded re-runs as scheduled again) still shows its function, input and, as scheduled time,
// the rewind's time.
func TestHistoryRerunWithoutSchedulingEvent(t *testing.T) {
	events := []history.Event{
		ev(history.TaskScheduled, 0, func(e *history.Event) { e.ID, e.Name, e.Input = 0, "flaky", json.RawMessage(`"x"`) }),
		ev(history.TaskFailed, 1, func(e *history.Event) { e.TaskID, e.Failure = 0, &history.Failure{Message: "first"} }),
		ev(history.ExecutionRewound, 5, func(e *history.Event) { e.Voided = []int32{0} }),
		ev(history.TaskFailed, 6, func(e *history.Event) { e.TaskID, e.Failure = 0, &history.Failure{Message: "second"} }),
		ev(history.ExecutionRewound, 8, func(e *history.Event) { e.Voided = []int32{0} }),
		ev(history.TaskCompleted, 9, func(e *history.Event) { e.TaskID, e.Result = 0, json.RawMessage(`1`) }),
		ev(history.TaskCompleted, 10, func(e *history.Event) { e.TaskID = 0 }), // a duplicate: nothing to pair with
	}
	got := transformHistory(events, StatusOptions{ShowInput: true})
	type shown struct{ typ, fn, input, sched string }
	var have []shown
	for _, h := range got {
		have = append(have, shown{h.EventType, h.FunctionName, string(h.Input), h.ScheduledTime})
	}
	want := []shown{
		{"TaskFailed", "flaky", `"x"`, historyTime(at(0))},
		{"ExecutionRewound", "", "", ""},
		{"TaskFailed", "flaky", `"x"`, historyTime(at(5))},
		{"ExecutionRewound", "", "", ""},
		{"TaskCompleted", "flaky", `"x"`, historyTime(at(8))},
		{"TaskCompleted", "", "", ""},
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", have, want)
	}
}
