package reprisetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reprise-dev/reprise"
)

// Result is the state of an instance as the harness left it.
type Result struct {
	// Instance is the instance with its history (reprise.WithHistory).
	Instance *reprise.Instance
	// Status is Instance.Status.
	Status reprise.RuntimeStatus
	// Stuck is set by Run and Wait when nothing could happen any more and the instance had
	// not finished: it waits for an event that nobody raises, or it is suspended.
	Stuck bool

	h     *Harness
	start time.Time
}

// ID returns the instance ID.
func (r *Result) ID() string { return r.Instance.ID }

// Failure returns the failure of a Failed instance, else nil.
func (r *Result) Failure() *reprise.FailureDetails { return r.Instance.Failure }

// History returns the events of the instance's current execution.
func (r *Result) History() []reprise.HistoryEvent { return r.Instance.History }

// EventTypes returns the types of the history's events, in order ("ExecutionStarted",
// "TaskScheduled", ...): what a test compares when times and IDs do not matter.
func (r *Result) EventTypes() []string {
	out := make([]string, len(r.Instance.History))
	for i, e := range r.Instance.History {
		out[i] = e.Type
	}
	return out
}

// DecodeOutput decodes the instance's output (JSON) into v.
func (r *Result) DecodeOutput(v any) error {
	if len(r.Instance.Output) == 0 {
		return fmt.Errorf("instance %q has no output (status %v)", r.Instance.ID, r.Status)
	}
	if err := json.Unmarshal(r.Instance.Output, v); err != nil {
		return fmt.Errorf("instance %q: decode output %s into %T: %w", r.Instance.ID, r.Instance.Output, v, err)
	}
	return nil
}

// DecodeCustomStatus decodes the instance's custom status (JSON) into v.
func (r *Result) DecodeCustomStatus(v any) error {
	if len(r.Instance.CustomStatus) == 0 {
		return fmt.Errorf("instance %q has no custom status", r.Instance.ID)
	}
	if err := json.Unmarshal(r.Instance.CustomStatus, v); err != nil {
		return fmt.Errorf("instance %q: decode custom status %s into %T: %w", r.Instance.ID, r.Instance.CustomStatus, v, err)
	}
	return nil
}

// Output returns the output of a Completed instance as a T. It fails the test, with the
// history, when the instance did not complete or its output is not a T.
func Output[T any](r *Result) T {
	r.h.t.Helper()
	var v T
	if r.Status != reprise.StatusCompleted {
		r.fail("Output: want status Completed, got %v", r.Status)
		return v
	}
	if err := r.DecodeOutput(&v); err != nil {
		r.fail("Output: %v", err)
	}
	return v
}

// CustomStatus returns the instance's custom status as a T, failing the test (with the
// history) when it has none or it is not a T.
func CustomStatus[T any](r *Result) T {
	r.h.t.Helper()
	var v T
	if err := r.DecodeCustomStatus(&v); err != nil {
		r.fail("CustomStatus: %v", err)
	}
	return v
}

// RequireStatus fails the test now (t.Fatal), logging the history, unless the instance has
// the status.
func (r *Result) RequireStatus(want reprise.RuntimeStatus) {
	r.h.t.Helper()
	if r.Status != want {
		r.fail("want status %v, got %v", want, r.Status)
	}
}

// RequireStuck fails the test now, logging the history, unless nothing could happen any more
// while the instance was unfinished.
func (r *Result) RequireStuck() {
	r.h.t.Helper()
	if !r.Stuck {
		r.fail("want the instance stuck (unfinished, nothing left to happen), got status %v", r.Status)
	}
}

// RequireFailed fails the test now, logging the history, unless the instance failed with a
// message that contains substr.
func (r *Result) RequireFailed(substr string) {
	r.h.t.Helper()
	if r.Status != reprise.StatusFailed {
		r.fail("want status Failed, got %v", r.Status)
		return
	}
	if f := r.Failure(); f == nil || !strings.Contains(f.Message, substr) {
		r.fail("want a failure containing %q, got %+v", substr, f)
	}
}

func (r *Result) fail(format string, args ...any) {
	r.h.t.Helper()
	r.h.t.Log(r.Dump())
	r.h.t.Fatalf("reprisetest: instance %q: "+format, append([]any{r.Instance.ID}, args...)...)
}

// Dump returns the instance and its history as text, one event a line with its virtual time
// relative to the harness's start: what the assertion helpers log when they fail.
func (r *Result) Dump() string {
	var b strings.Builder
	inst := r.Instance
	fmt.Fprintf(&b, "instance %s (%s): %v", inst.ID, inst.Name, inst.Status)
	if r.Stuck {
		b.WriteString(", stuck")
	}
	b.WriteString("\n")
	if len(inst.Input) > 0 {
		fmt.Fprintf(&b, "  input:         %s\n", clip(inst.Input))
	}
	if len(inst.Output) > 0 {
		fmt.Fprintf(&b, "  output:        %s\n", clip(inst.Output))
	}
	if len(inst.CustomStatus) > 0 {
		fmt.Fprintf(&b, "  custom status: %s\n", clip(inst.CustomStatus))
	}
	if f := inst.Failure; f != nil {
		fmt.Fprintf(&b, "  failure:       %s: %s\n", f.Type, f.Message)
	}
	fmt.Fprintf(&b, "  history (%d events):\n", len(inst.History))
	// Columns padded by hand: text/tabwriter would leave trailing spaces on lines without a
	// description.
	wOff, wType := 0, 0
	for _, e := range inst.History {
		wOff = max(wOff, len(offset(e.Timestamp.Sub(r.start))))
		wType = max(wType, len(e.Type))
	}
	for _, e := range inst.History {
		line := fmt.Sprintf("    %-*s  %-*s  %s", wOff, offset(e.Timestamp.Sub(r.start)), wType, e.Type, describe(e))
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// describe returns what matters of an event, briefly.
func describe(e reprise.HistoryEvent) string {
	var parts []string
	if e.Status != "" {
		parts = append(parts, e.Status)
	}
	if e.EventID >= 0 && e.Type != "ExecutionStarted" {
		parts = append(parts, fmt.Sprintf("#%d", e.EventID))
	}
	switch e.Type {
	case "TaskCompleted", "TaskFailed", "TimerFired", "SubOrchestrationInstanceCompleted", "SubOrchestrationInstanceFailed":
		parts = append(parts, fmt.Sprintf("of #%d", e.TaskID))
	}
	if e.Name != "" {
		parts = append(parts, e.Name)
	}
	if e.InstanceID != "" && e.Type != "ExecutionStarted" {
		parts = append(parts, "instance "+e.InstanceID)
	}
	if !e.FireAt.IsZero() {
		parts = append(parts, "fires at "+e.FireAt.UTC().Format(time.RFC3339Nano))
	}
	if len(e.Input) > 0 {
		parts = append(parts, "input "+clip(e.Input))
	}
	if len(e.Result) > 0 {
		parts = append(parts, "result "+clip(e.Result))
	}
	if e.Failure != nil {
		parts = append(parts, "failure "+e.Failure.Message)
	}
	return strings.Join(parts, " ")
}

// offset writes a virtual time as the time since the harness started: +0s, +720h0m0s.
func offset(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
