package httpapi

import (
	"encoding/json"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// HistoryEvent is one entry of historyEvents in the shape the extension returns with
// showHistory=true (docs/compat/durable-functions-http.md §7): PascalCase keys, EventType as a
// name, scheduling events merged into their completions. Keys without a value for the event are
// left out; the order of the others follows the documentation's example given there.
type HistoryEvent struct {
	EventType           string          `json:"EventType"`
	OrchestrationStatus string          `json:"OrchestrationStatus,omitempty"`
	FunctionName        string          `json:"FunctionName,omitempty"`
	Name                string          `json:"Name,omitempty"`
	InstanceID          string          `json:"InstanceId,omitempty"`
	Input               json.RawMessage `json:"Input,omitempty"`
	Result              json.RawMessage `json:"Result,omitempty"`
	Reason              string          `json:"Reason,omitempty"`
	Details             json.RawMessage `json:"Details,omitempty"`
	FailureDetails      *FailureDetails `json:"FailureDetails,omitempty"`
	FireAt              string          `json:"FireAt,omitempty"`
	ScheduledTime       string          `json:"ScheduledTime,omitempty"`
	Timestamp           string          `json:"Timestamp"`
}

// FailureDetails is DTFx's FailureDetails, as it appears in history events.
type FailureDetails struct {
	ErrorType      string          `json:"ErrorType"`
	ErrorMessage   string          `json:"ErrorMessage"`
	StackTrace     string          `json:"StackTrace,omitempty"`
	InnerFailure   *FailureDetails `json:"InnerFailure,omitempty"`
	IsNonRetriable bool            `json:"IsNonRetriable"`
}

// HistoryEvents returns the history of a status response with showHistory=true, for other views of
// it (the dashboard's raw history).
func HistoryEvents(events []history.Event, opts StatusOptions) []HistoryEvent {
	return transformHistory(events, opts)
}

// transformHistory turns stored events into historyEvents, keeping their order. The result is
// never nil, so that an asked-for history is present even when empty.
func transformHistory(events []history.Event, opts StatusOptions) []HistoryEvent {
	merged := matchCompletions(events)
	out := make([]HistoryEvent, 0, len(events))
	for i, e := range events {
		switch e.Type {
		case history.OrchestratorStarted, history.OrchestratorCompleted:
			continue // replay bookkeeping, not what happened
		}
		if _, consumed := merged.scheduledUsed[i]; consumed {
			continue // shown inside its completion
		}
		h := HistoryEvent{EventType: e.Type.String(), Timestamp: historyTime(e.Time)}
		input := func(raw json.RawMessage) {
			if opts.ShowInput {
				h.Input = rawJSON(raw)
			}
		}
		result := func(raw json.RawMessage) {
			if opts.ShowHistoryOutput {
				h.Result = rawJSON(raw)
			}
		}
		switch e.Type {
		case history.ExecutionStarted:
			h.FunctionName = e.Name
			input(e.Input)
		case history.ExecutionCompleted, history.ExecutionFailed, history.ContinueAsNew:
			h.OrchestrationStatus = store.Status(e.Status).String()
			result(e.Result)
			h.FailureDetails = failureDetails(e.Failure)
		case history.ExecutionTerminated:
			input(e.Input) // the reason, stored as DTFx does in Input
		case history.ExecutionSuspended, history.ExecutionResumed, history.ExecutionRewound:
			h.Reason = reasonText(e.Input)
		case history.TaskScheduled:
			h.FunctionName = e.Name
			input(e.Input)
		case history.SubOrchestrationInstanceCreated:
			h.FunctionName, h.InstanceID = e.Name, e.InstanceID
			input(e.Input)
		case history.TaskCompleted, history.SubOrchestrationInstanceCompleted:
			result(e.Result)
		case history.TaskFailed, history.SubOrchestrationInstanceFailed:
			if e.Failure != nil {
				h.Reason = e.Failure.Message
				h.Details = rawJSON(e.Failure.Details)
			}
			h.FailureDetails = failureDetails(e.Failure)
		case history.TimerCreated, history.TimerFired:
			if !e.FireAt.IsZero() {
				h.FireAt = historyTime(e.FireAt)
			}
		case history.EventRaised:
			h.Name = e.Name
			input(e.Input)
		case history.EventSent:
			h.Name, h.InstanceID = e.Name, e.InstanceID
			input(e.Input)
		case history.PatchApplied:
			h.Name = e.Name // Reprise's own: the patch the execution took (ctx.IsPatched)
		}
		if j, ok := merged.scheduledOf[i]; ok {
			s := events[j]
			h.FunctionName = s.Name
			h.ScheduledTime = historyTime(s.Time)
			if k, ok := merged.rewoundAt[i]; ok {
				h.ScheduledTime = historyTime(events[k].Time)
			}
			if s.Type == history.SubOrchestrationInstanceCreated {
				h.InstanceID = s.InstanceID
			}
			input(s.Input)
		}
		out = append(out, h)
	}
	return out
}

// merges records which completion (by index) completes which scheduling event.
type merges struct {
	scheduledOf   map[int]int      // completion index → scheduling event index
	scheduledUsed map[int]struct{} // scheduling event indexes merged into a completion
	// rewoundAt maps the completion of a re-run that history recorded without scheduling it
	// again (older versions did so) to the ExecutionRewound that re-ran it: its scheduled time.
	rewoundAt map[int]int
}

// matchCompletions pairs each TaskCompleted/TaskFailed with the TaskScheduled it completes, and
// each SubOrchestrationInstanceCompleted/Failed with its SubOrchestrationInstanceCreated. A
// completion takes the latest earlier scheduling event of its kind with its TaskID, so a task
// scheduled again after a rewind pairs with its own completion. A re-run that was not recorded
// as scheduled again takes the details of the task's scheduling event and the time of the
// rewind.
func matchCompletions(events []history.Event) merges {
	m := merges{scheduledOf: map[int]int{}, scheduledUsed: map[int]struct{}{}, rewoundAt: map[int]int{}}
	type key struct {
		kind history.Type
		id   int32
	}
	open := map[key]int{}
	closed := map[key]int{}  // scheduling events already paired, by the key they were open under
	rewound := map[key]int{} // closed keys that a later ExecutionRewound re-runs → its index
	pair := func(i int, k key) {
		if j, ok := open[k]; ok {
			m.scheduledOf[i], m.scheduledUsed[j] = j, struct{}{}
			delete(open, k)
			closed[k] = j
			return
		}
		if r, ok := rewound[k]; ok {
			m.scheduledOf[i], m.rewoundAt[i] = closed[k], r
			delete(rewound, k)
		}
	}
	for i, e := range events {
		switch e.Type {
		case history.TaskScheduled, history.SubOrchestrationInstanceCreated:
			open[key{e.Type, e.ID}] = i
			delete(rewound, key{e.Type, e.ID}) // recorded again: it pairs as any other
		case history.TaskCompleted, history.TaskFailed:
			pair(i, key{history.TaskScheduled, e.TaskID})
		case history.SubOrchestrationInstanceCompleted, history.SubOrchestrationInstanceFailed:
			pair(i, key{history.SubOrchestrationInstanceCreated, e.TaskID})
		case history.ExecutionRewound:
			for _, id := range e.Voided {
				for _, kind := range []history.Type{history.TaskScheduled, history.SubOrchestrationInstanceCreated} {
					if _, ok := closed[key{kind, id}]; ok {
						rewound[key{kind, id}] = i
					}
				}
			}
		}
	}
	return m
}

func failureDetails(f *history.Failure) *FailureDetails {
	if f == nil {
		return nil
	}
	return &FailureDetails{
		ErrorType:      f.Type,
		ErrorMessage:   f.Message,
		StackTrace:     f.StackTrace,
		InnerFailure:   failureDetails(f.Inner),
		IsNonRetriable: f.NonRetriable,
	}
}

// reasonText returns a reason stored as a JSON string as plain text; anything else as written.
func reasonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
