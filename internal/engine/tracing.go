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
	// rewound is set once the execution was rewound: its span was emitted when it failed, and
	// is not emitted again when it ends once more (see emitSpans).
	rewound bool
	// open holds, with tracing on, the execution's scheduling events still waiting for their
	// completion (activities, sub-orchestrations, entity calls, lock requests): the start of
	// their retroactive spans. Kept with the cached execution and rebuilt from the history
	// after a cache miss, so that a completion emits its span once, whichever episode sees it.
	open map[openKey]history.Event
}

// openKey names a scheduling event by what its completion refers to it by: the task ID of
// activities and sub-orchestrations, the request ID of entity calls and lock requests.
type openKey struct {
	id  int32
	req string
}

// keyOf returns the key of a scheduling or completion event, and whether it is one that has a
// retroactive span.
func keyOf(ev history.Event) (openKey, bool) {
	switch ev.Type {
	case history.TaskScheduled, history.SubOrchestrationInstanceCreated:
		return openKey{id: ev.ID}, true
	case history.TaskCompleted, history.TaskFailed, history.SubOrchestrationInstanceCompleted, history.SubOrchestrationInstanceFailed:
		return openKey{id: ev.TaskID}, true
	case history.EntityOperationCalled, history.EntityOperationCompleted, history.EntityOperationFailed,
		history.EntityLockRequested, history.EntityLockGranted:
		return openKey{id: -1, req: ev.RequestID}, true
	}
	return openKey{}, false
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

// taskSpan is a retroactive span to emit: a scheduling event and its completion.
type taskSpan struct{ scheduled, done history.Event }

// episodeSpans is what an episode emits once committed.
type episodeSpans struct {
	orch   orchSpan
	info   tracing.Info
	timers []history.Event // TimerFired events new in the episode
	tasks  []taskSpan      // completions new in the episode, with what they complete
	began  time.Time       // the episode's start
	failed *history.Failure
}

// fillOpen sets the open scheduling events of a cached-less execution from its history.
func (sp *episodeSpans) fillOpen(old []history.Event) {
	sp.orch.open = map[openKey]history.Event{}
	sp.track(old, false)
}

// track follows evs (new in the episode when emit is set) in the open events: a scheduling
// event opens, a completion closes and, when emit, is recorded for its span. A completion that
// finds nothing open (a result delivered twice, or for a voided task) has no span.
func (sp *episodeSpans) track(evs []history.Event, emit bool) {
	for _, ev := range evs {
		k, ok := keyOf(ev)
		if !ok {
			continue
		}
		switch ev.Type {
		case history.TaskScheduled, history.SubOrchestrationInstanceCreated, history.EntityOperationCalled, history.EntityLockRequested:
			sp.orch.open[k] = ev
		default:
			s, ok := sp.orch.open[k]
			if !ok {
				continue
			}
			delete(sp.orch.open, k)
			if emit {
				sp.tasks = append(sp.tasks, taskSpan{s, ev})
			}
		}
	}
}

// rewoundIn reports whether evs hold a rewind of the execution.
func rewoundIn(evs []history.Event) bool {
	for _, ev := range evs {
		if ev.Type == history.ExecutionRewound {
			return true
		}
	}
	return false
}

// emitSpans emits the spans of a committed episode: the retroactive spans of the tasks it saw
// complete, its timers, what it sent, and the orchestration span if the execution ended. Only
// events new in the episode count, so a replay emits nothing.
func (e *Engine) emitSpans(res *replay.Result, sp episodeSpans) {
	if !e.tracer.On() || (res == nil && sp.failed == nil) || !sp.orch.o.Self.IsValid() {
		return
	}
	for _, t := range sp.tasks {
		switch t.scheduled.Type {
		case history.EntityOperationCalled:
			e.tracer.EmitEntityCall(sp.orch.o, sp.info, t.scheduled, t.done)
		case history.EntityLockRequested:
			e.tracer.EmitLockRequest(sp.orch.o, sp.info, t.scheduled, t.done)
		default:
			e.tracer.EmitTask(sp.orch.o, sp.info, t.scheduled, t.done)
		}
	}
	for _, t := range sp.timers {
		e.tracer.EmitTimer(sp.orch.o, sp.info, t.TaskID, t.FireAt, t.Time)
	}
	status, failure := store.StatusFailed, ""
	if res != nil {
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
		status = res.Status
		if res.Status == store.StatusFailed {
			failure = "orchestration failed"
			if res.Failure != nil {
				failure = res.Failure.Message
			}
		}
	} else {
		failure = sp.failed.Message // failed outside the orchestrator (failWith)
	}
	if sp.orch.rewound {
		return // its span was emitted when it failed, with the same ID
	}
	e.tracer.EmitOrchestration(sp.orch.o, sp.info, status.String(), sp.orch.started, time.Now(), failure)
}

// traceActions gives the activities and sub-orchestrations an episode schedules the trace
// context of their retroactive CLIENT spans (NewChild), stored with them in the history, so
// that their own spans are its children. A gRPC worker's actions carry their own. Only with a
// provider that keeps IDs: otherwise effects gives them the caller's.
func (e *Engine) traceActions(sp *episodeSpans, evs []history.Event) {
	if !e.tracer.KeepsIDs() {
		return
	}
	for i := range evs {
		if t := evs[i].Type; evs[i].Trace == nil && (t == history.TaskScheduled || t == history.SubOrchestrationInstanceCreated) {
			evs[i].Trace = sp.orch.o.NewChild()
		}
	}
}
