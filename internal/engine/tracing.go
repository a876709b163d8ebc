package engine

import (
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/store"
)

// orchSpan is what an execution's episodes need of its span, known from its ExecutionStarted
// event (and cached with the execution, whose later episodes do not load the history).
type orchSpan struct {
	parent   *history.TraceContext // the caller's, from ExecutionStarted
	children *history.TraceContext // parent of its activities and sub-orchestrations
	started  time.Time             // the execution's start: its span's
	o        tracing.Orchestration // with tracing on
}

// orchSpanOf returns the span of the execution that start starts. With tracing off its
// children take the caller's trace context, so that they still join the caller's trace.
func (e *Engine) orchSpanOf(start history.Event, inst store.Instance) orchSpan {
	s := orchSpan{parent: start.Trace, children: start.Trace, started: start.Time}
	if s.started.IsZero() {
		s.started = inst.CreatedAt
	}
	if e.tracer.On() {
		s.o = tracing.OrchestrationOf(start, inst.ExecutionID)
		if e.tracer.KeepsIDs() {
			s.children = s.o.Trace()
		}
	}
	return s
}

// episodeSpans is what an episode emits once committed.
type episodeSpans struct {
	orch   orchSpan
	info   tracing.Info
	timers []history.Event // TimerFired events new in the episode
	began  time.Time       // the episode's start
}

// emitSpans emits the spans of a committed episode: its timers, and the orchestration span
// if the execution ended. Only events new in the episode count, so a replay emits nothing.
func (e *Engine) emitSpans(w store.OrchestrationWork, res *replay.Result, sp episodeSpans) {
	if !e.tracer.On() || res == nil || !sp.orch.o.Self.IsValid() {
		return
	}
	for _, t := range sp.timers {
		e.tracer.EmitTimer(sp.orch.o, sp.info, t.TaskID, t.FireAt, t.Time)
	}
	now := time.Now()
	for _, a := range res.Actions { // the episode's new actions only: replayed ones are not in it
		switch a.Type {
		case history.EventSent:
			e.tracer.EmitSent(sp.orch.o, sp.info, true, a.Name, a.InstanceID, sp.began, now)
		case history.EntityOperationSignaled:
			if target, err := entityTarget(a); err == nil {
				e.tracer.EmitSent(sp.orch.o, sp.info, false, a.Name, target, sp.began, now)
			}
		}
	}
	if !res.Done {
		return
	}
	var failure string
	if res.Status == store.StatusFailed {
		failure = "orchestration failed"
		if res.Failure != nil {
			failure = res.Failure.Message
		}
	}
	e.tracer.EmitOrchestration(sp.orch.o, sp.info, res.Status.String(), sp.orch.started, time.Now(), failure)
}
