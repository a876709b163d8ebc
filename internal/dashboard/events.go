package dashboard

import (
	"bytes"
	"encoding/json"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// dataLimit bounds HistoryRow.Data; the raw history has the whole payload.
const dataLimit = 8 << 10

// HistoryRow is one event of the history table: every stored event but the replay bookkeeping
// (OrchestratorStarted, OrchestratorCompleted), in order, each on its own (a completion is not
// merged into its scheduling event, unlike the management API's history).
type HistoryRow struct {
	// ID is the sequence number of a scheduling event (TaskScheduled, TimerCreated,
	// SubOrchestrationInstanceCreated, EventSent); -1 for the others.
	ID   int32  `json:"id"`
	Type string `json:"type"`
	Time string `json:"time"`
	// Name is the activity's, sub-orchestrator's or orchestrator's name, the event's name, or
	// the final status of ExecutionCompleted. Completions carry the name of what they complete.
	Name string `json:"name,omitempty"`
	// TaskID is the scheduling event a completion or TimerFired refers to.
	TaskID     *int32 `json:"taskId,omitempty"`
	InstanceID string `json:"instanceId,omitempty"` // sub-orchestration, event target, parent
	FireAt     string `json:"fireAt,omitempty"`     // timers
	Attempt    int    `json:"attempt,omitempty"`    // TaskScheduled
	Retry      string `json:"retry,omitempty"`      // TimerCreated of a retry wait
	// TimeoutOf is the event name of the WaitForEvent a TimerCreated times out.
	TimeoutOf string `json:"timeoutOf,omitempty"`
	// Reason of a terminate, suspend, resume or rewind.
	Reason string `json:"reason,omitempty"`
	// Error is the failure of TaskFailed, SubOrchestrationInstanceFailed or a failed execution.
	Error *history.Failure `json:"error,omitempty"`
	// Data is the input, result or payload as compact JSON, cut to dataLimit bytes (DataCut).
	Data    string `json:"data,omitempty"`
	DataCut bool   `json:"dataCut,omitempty"`
}

// HistoryRows lays out events for the history table.
func HistoryRows(events []history.Event) []HistoryRow {
	rows := make([]HistoryRow, 0, len(events))
	// The latest scheduling event's name per sequence number: after a rewind a task is scheduled
	// again with its old number, and its completion follows that.
	names := map[int32]string{}
	for _, e := range events {
		if e.Type == history.OrchestratorStarted || e.Type == history.OrchestratorCompleted {
			continue
		}
		r := HistoryRow{ID: -1, Type: e.Type.String(), Time: timeText(e.Time)}
		if e.Type.Scheduling() {
			r.ID = e.ID
		}
		taskRef := func() {
			id := e.TaskID
			r.TaskID = &id
			r.Name = names[id]
		}
		switch e.Type {
		case history.ExecutionStarted:
			r.Name = e.Name
			r.Data, r.DataCut = data(e.Input)
			if e.Parent != nil {
				r.InstanceID = e.Parent.InstanceID
			}
		case history.ExecutionCompleted, history.ExecutionFailed:
			r.Name, r.Error = store.Status(e.Status).String(), e.Failure
			r.Data, r.DataCut = data(e.Result)
		case history.ExecutionTerminated, history.ExecutionSuspended, history.ExecutionResumed, history.ExecutionRewound:
			r.Reason = reason(e.Input)
		case history.ContinueAsNew:
			r.Data, r.DataCut = data(e.Result)
		case history.TaskScheduled:
			names[e.ID] = e.Name
			r.Name, r.Attempt = e.Name, e.Attempt
			r.Data, r.DataCut = data(e.Input)
		case history.SubOrchestrationInstanceCreated:
			names[e.ID] = e.Name
			r.Name, r.InstanceID = e.Name, e.InstanceID
			r.Data, r.DataCut = data(e.Input)
		case history.TaskCompleted, history.SubOrchestrationInstanceCompleted:
			taskRef()
			r.Data, r.DataCut = data(e.Result)
		case history.TaskFailed, history.SubOrchestrationInstanceFailed:
			taskRef()
			r.Error = e.Failure
		case history.TimerCreated:
			r.FireAt, r.Retry, r.TimeoutOf = timeText(e.FireAt), e.Retry, e.TimeoutOf
			r.Name = timerName(e)
			names[e.ID] = r.Name
		case history.TimerFired:
			taskRef()
			r.FireAt = timeText(e.FireAt)
		case history.EventRaised, history.GenericEvent:
			r.Name = e.Name
			r.Data, r.DataCut = data(e.Input)
		case history.EventSent:
			r.Name, r.InstanceID = e.Name, e.InstanceID
			r.Data, r.DataCut = data(e.Input)
		case history.PatchApplied:
			r.Name = e.Name
		}
		rows = append(rows, r)
	}
	return rows
}

// timerName names a timer by what it is for.
func timerName(e history.Event) string {
	switch {
	case e.Retry != "":
		return e.Retry
	case e.TimeoutOf != "":
		return "timeout of " + e.TimeoutOf
	}
	return "timer"
}

// data returns a payload as compact JSON (as stored when it is not JSON), cut to dataLimit.
func data(raw []byte) (string, bool) {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		buf.Reset()
		buf.Write(raw)
	}
	s := buf.String()
	if s == "null" {
		return "", false
	}
	c := cut(s, dataLimit)
	return c, c != s
}

// reason returns a reason stored as a JSON string as plain text, anything else as written.
func reason(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}
