package dashboard

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Timeline is an execution's history laid out for the page: bars (spans) for the work that takes
// time, marks for the events that happen at one moment.
type Timeline struct {
	// Start is when the execution started (its ExecutionStarted event, else the instance's
	// creation); End when it finished, "" while it is active (the page draws up to now).
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
	Spans []Span `json:"spans"`
	Marks []Mark `json:"marks"`
}

// Span kinds.
const (
	SpanActivity         = "activity"
	SpanTimer            = "timer"
	SpanSubOrchestration = "suborchestration"
)

// Span states.
const (
	StateRunning   = "running"   // still open in an active execution
	StateCompleted = "completed" // activity or sub-orchestration completed; timer fired
	StateFailed    = "failed"
	StateAbandoned = "abandoned" // still open when the execution finished (e.g. terminated)
	StateCanceled  = "canceled"  // a timeout timer whose event came first
)

// Span is one bar: an activity (scheduled → completed or failed), a timer (created → fired) or a
// sub-orchestration (created → completed or failed).
type Span struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	State string `json:"state"`
	Start string `json:"start"`
	// End is "" while the span is open in an active execution.
	End string `json:"end,omitempty"`
	// TaskID is the sequence number of the scheduling event.
	TaskID int32 `json:"taskId"`
	// InstanceID is the sub-orchestration's instance.
	InstanceID string `json:"instanceId,omitempty"`
	// FireAt is the timer's due time.
	FireAt string `json:"fireAt,omitempty"`
	// Attempt is the activity's retry attempt (1-based), when known.
	Attempt int `json:"attempt,omitempty"`
	// Error is the failure message of a failed span.
	Error string `json:"error,omitempty"`
	// Input is the activity's or sub-orchestration's input as compact JSON, cut to inputPreview
	// bytes (with "…"), so that bars of the same name can be told apart.
	Input string `json:"input,omitempty"`
	// Summary is a short text of the input for the bar's label (see summarize).
	Summary string `json:"summary,omitempty"`
	// TimeoutOf is the event a timeout timer's WaitForEvent waits for.
	TimeoutOf string `json:"timeoutOf,omitempty"`
}

// inputPreview bounds Span.Input; the raw history has the whole input.
const inputPreview = 200

// preview returns raw JSON compacted and cut to inputPreview bytes, "" for no input or null.
func preview(raw []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		buf.Reset()
		buf.Write(raw) // not JSON: shown as stored
	}
	s := buf.String()
	if s == "" || s == "null" {
		return ""
	}
	if len(s) > inputPreview {
		cut := inputPreview
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Mark is an event of one moment: EventRaised, EventSent, ExecutionSuspended, ExecutionResumed,
// ExecutionTerminated, ExecutionRewound, ContinueAsNew, ExecutionCompleted, ExecutionFailed.
type Mark struct {
	Kind       string `json:"kind"`
	Time       string `json:"time"`
	Name       string `json:"name,omitempty"`       // event name; final status of ExecutionCompleted
	InstanceID string `json:"instanceId,omitempty"` // EventSent's target
}

// BuildTimeline lays out the events of inst's current execution. A completion closes the latest
// open span of its kind with its task ID, so a task scheduled again after a rewind gets its own bar.
func BuildTimeline(inst store.Instance, events []history.Event) Timeline {
	tl := Timeline{Start: timeText(inst.CreatedAt), Spans: []Span{}, Marks: []Mark{}}
	type key struct {
		kind string
		id   int32
	}
	open := map[key]int{}
	last := map[key]int{}        // the latest span of each key, open or closed
	rerun := map[key]time.Time{} // closed spans that a later rewind re-runs → the rewind's time
	closeSpan := func(kind string, id int32, at time.Time, state string, f *history.Failure) {
		k := key{kind, id}
		i, ok := open[k]
		if !ok {
			r, rewound := rerun[k]
			if !rewound {
				return // a completion without its scheduling event: nothing to draw
			}
			// A re-run that history did not record as scheduled again (older versions): a
			// bar like the task's last one, from the rewind.
			s := tl.Spans[last[k]]
			s.Start, s.End, s.Error = timeText(r), "", ""
			delete(rerun, k)
			i = len(tl.Spans)
			last[k] = i
			tl.Spans = append(tl.Spans, s)
		}
		delete(open, k)
		tl.Spans[i].End, tl.Spans[i].State = timeText(at), state
		if f != nil {
			tl.Spans[i].Error = f.Message
		}
	}
	addSpan := func(s Span) {
		k := key{s.Kind, s.TaskID}
		open[k], last[k] = len(tl.Spans), len(tl.Spans)
		delete(rerun, k)
		tl.Spans = append(tl.Spans, s)
	}
	// The event a wait with a timeout receives cancels its timer (replay does; the history does
	// not record it): the earliest open timeout timer of the event's name ends there.
	closeTimeout := func(e history.Event) {
		best := -1
		for k, i := range open {
			s := tl.Spans[i]
			if k.kind == SpanTimer && s.TimeoutOf != "" && strings.EqualFold(s.TimeoutOf, e.Name) && (best < 0 || i < best) {
				best = i
			}
		}
		if best >= 0 {
			closeSpan(SpanTimer, tl.Spans[best].TaskID, e.Time, StateCanceled, nil)
		}
	}
	var end time.Time
	for _, e := range events {
		switch e.Type {
		case history.ExecutionStarted:
			tl.Start = timeText(e.Time)
		case history.TaskScheduled:
			addSpan(Span{Kind: SpanActivity, Name: e.Name, State: StateRunning, Start: timeText(e.Time), TaskID: e.ID, Attempt: e.Attempt, Input: preview(e.Input), Summary: summarize(e.Input)})
		case history.TaskCompleted:
			closeSpan(SpanActivity, e.TaskID, e.Time, StateCompleted, nil)
		case history.TaskFailed:
			closeSpan(SpanActivity, e.TaskID, e.Time, StateFailed, e.Failure)
		case history.TimerCreated:
			addSpan(Span{Kind: SpanTimer, Name: timerName(e), State: StateRunning, Start: timeText(e.Time), TaskID: e.ID, FireAt: timeText(e.FireAt), TimeoutOf: e.TimeoutOf})
		case history.TimerFired:
			closeSpan(SpanTimer, e.TaskID, e.Time, StateCompleted, nil)
		case history.SubOrchestrationInstanceCreated:
			addSpan(Span{Kind: SpanSubOrchestration, Name: e.Name, State: StateRunning, Start: timeText(e.Time), TaskID: e.ID, InstanceID: e.InstanceID, Input: preview(e.Input), Summary: summarize(e.Input)})
		case history.SubOrchestrationInstanceCompleted:
			closeSpan(SpanSubOrchestration, e.TaskID, e.Time, StateCompleted, nil)
		case history.SubOrchestrationInstanceFailed:
			closeSpan(SpanSubOrchestration, e.TaskID, e.Time, StateFailed, e.Failure)
		case history.EventRaised, history.GenericEvent:
			closeTimeout(e)
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time), Name: e.Name})
		case history.EventSent:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time), Name: e.Name, InstanceID: e.InstanceID})
		case history.ExecutionRewound:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time)})
			for _, id := range e.Voided {
				for _, kind := range []string{SpanActivity, SpanSubOrchestration} {
					k := key{kind, id}
					if _, ok := last[k]; ok {
						rerun[k] = e.Time
					}
				}
			}
			end = time.Time{} // the execution runs again
		case history.ExecutionSuspended, history.ExecutionResumed:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time)})
		case history.ExecutionTerminated:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time)})
			end = e.Time
		case history.ContinueAsNew:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time)})
			end = e.Time
		case history.ExecutionCompleted, history.ExecutionFailed:
			tl.Marks = append(tl.Marks, Mark{Kind: e.Type.String(), Time: timeText(e.Time), Name: store.Status(e.Status).String()})
			end = e.Time
		}
	}
	if inst.Status.Terminal() || inst.Status == store.StatusContinuedAsNew {
		if end.IsZero() {
			end = inst.UpdatedAt
		}
		tl.End = timeText(end)
		for _, i := range open {
			tl.Spans[i].State, tl.Spans[i].End = StateAbandoned, tl.End
		}
	}
	return tl
}
