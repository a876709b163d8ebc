package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
)

// runEpisode runs one orchestration episode and commits it. Whatever it gives up on is tried
// again from the stored history once the lease expires: its caller stops renewing the lease when
// it returns.
func (e *Engine) runEpisode(w store.OrchestrationWork) {
	claimed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration)
	defer cancel()
	attrs := []any{"instanceId", w.Instance.ID, "name", w.Instance.Name}
	var done func(error) // a Remote's, told how the commit went
	var sp episodeSpans
	ep, exec, res, err := e.episode(ctx, w, nil, &done, &sp)
	if done == nil {
		done = func(error) {}
	}
	if err != nil {
		done(err)
		// Nothing was changed. Not released at once: whatever failed (a stuck orchestrator, a
		// store that cannot load the history) would most likely fail again straight away.
		var dl *replay.DeadlockError
		var rej *rejectedError
		if errors.As(err, &rej) {
			e.reject(w, rej)
		} else if errors.Is(err, ErrGivenBack) {
			e.log.Info("orchestration turn given back by its worker; it runs again", append(attrs, "reason", err)...)
		} else if errors.As(err, &dl) {
			e.log.Error("orchestration episode abandoned: the orchestrator does not yield; it is tried again when its lease expires",
				append(attrs, "err", err)...)
		} else {
			e.log.Error("orchestration episode abandoned; it is tried again when its lease expires", append(attrs, "err", err)...)
		}
		if exec != nil {
			e.closeExec(exec)
		}
		return
	}
	reserved := e.reserveLocal(&ep)
	err = e.retry("committing orchestration episode", attrs, func(ctx context.Context) error {
		return e.st.CommitEpisode(ctx, ep)
	})
	if err != nil {
		e.runLocal(ep.LeaseTasks, reserved, err)
	}
	done(err)
	if err == nil && e.opts.Versioning.Active() {
		e.rejects.forget(w.Instance.ID) // it ran here: a later rejection starts the backoff over
	}
	if err != nil {
		if exec != nil {
			e.closeExec(exec) // its state is not what the store has
		}
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			e.opts.Metrics.LeaseLost(metrics.KindOrchestration)
			e.log.Warn("orchestration episode discarded: lease lost, or applied by an attempt whose reply was lost", attrs...)
		case errors.Is(err, store.ErrClosed):
		default:
			e.log.Error("orchestration episode not committed, given up: it runs again from its history when its lease expires",
				append(attrs, "err", err)...)
		}
		return
	}
	// Cached before its tasks start, so that their completions find the execution (merged.go).
	e.settle(w, ep, exec, res, sp, claimed)
	e.runLocal(ep.LeaseTasks, reserved, nil)
}

// settle finishes a committed episode of w: it caches the execution if it goes on, and logs,
// traces and counts the episode.
func (e *Engine) settle(w store.OrchestrationWork, ep store.Episode, exec *replay.Execution, res *replay.Result, sp episodeSpans, claimed time.Time) {
	if exec != nil {
		if res != nil && !res.Done && !e.stopping() {
			inst := ep.Instance
			inst.CreatedAt, inst.Tags = w.Instance.CreatedAt, w.Instance.Tags // as the store keeps them
			inst.HistoryLen = w.Instance.HistoryLen + len(ep.History)
			e.cache.put(&cached{
				instanceID:  ep.Instance.ID,
				executionID: ep.Instance.ExecutionID,
				historyLen:  inst.HistoryLen,
				exec:        exec,
				span:        sp.orch,
				inst:        inst,
			})
		} else {
			e.closeExec(exec)
		}
	}
	e.logEpisode(w, ep, res, sp)
	e.emitSpans(res, sp)
	e.countEpisode(w, ep, res, claimed)
}

// countEpisode tells the metrics of a committed episode.
func (e *Engine) countEpisode(w store.OrchestrationWork, ep store.Episode, res *replay.Result, claimed time.Time) {
	m := e.opts.Metrics
	ended := ep.Instance.Status.Terminal() && !w.Instance.Status.Terminal()
	// No result and not ended: late messages for a finished instance. No result but ended: the
	// instance failed without running its orchestrator (non-determinism, a panic in replay).
	if m == nil || res == nil && !ended {
		return
	}
	name := w.Instance.Name
	m.Episode(name, time.Since(claimed))
	if w.Instance.Status == store.StatusPending {
		m.OrchestrationStarted(name)
	}
	if ended {
		m.OrchestrationCompleted(name, ep.Instance.Status.String())
	}
	if res == nil {
		return
	}
	for _, a := range res.Actions {
		if a.Type == history.TaskScheduled && a.Attempt > 1 {
			m.Retry(a.Name)
		}
	}
}

// retry calls op until it succeeds or fails for good: ErrLeaseLost or ErrClosed (another attempt
// cannot help), Shutdown no longer waiting, or failures for half a lease duration, with backoff
// in between. The caller's lease is renewed meanwhile. Retrying after a lost reply is safe: if
// the first attempt was applied, the lease is gone and the store refuses the next (ErrLeaseLost).
func (e *Engine) retry(what string, attrs []any, op func(ctx context.Context) error) error {
	until := time.Now().Add(e.opts.LeaseDuration / 2)
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration/2)
		err := op(ctx)
		cancel()
		if err == nil || errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrClosed) ||
			time.Now().Add(backoff).After(until) {
			return err
		}
		e.log.Warn(what+" failed; retrying", append(attrs, "attempt", attempt, "err", err)...)
		select {
		case <-time.After(backoff):
		case <-e.halt:
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// logEpisode logs an orchestration's start and end once each: only after the episode that
// started or ended it committed, so neither a replay nor an episode retried after a lost lease
// logs them again.
func (e *Engine) logEpisode(w store.OrchestrationWork, ep store.Episode, res *replay.Result, sp episodeSpans) {
	if res == nil {
		return // late messages for a finished instance, or a failure logged where it was found
	}
	inst := ep.Instance
	var traceAttrs []any
	if e.log.Enabled(context.Background(), slog.LevelInfo) {
		traceAttrs = tracing.LogAttrs(sp.orch.o.Self)
	}
	if w.Instance.HistoryLen == 0 {
		e.log.Info("orchestration started", append([]any{"instanceId", inst.ID, "name", inst.Name, "executionId", inst.ExecutionID},
			traceAttrs...)...)
	}
	if !res.Done {
		return
	}
	attrs := append([]any{"instanceId", inst.ID, "name", inst.Name, "status", inst.Status.String(),
		"latency", inst.UpdatedAt.Sub(inst.CreatedAt)}, traceAttrs...)
	switch inst.Status {
	case store.StatusFailed:
		e.log.Warn("orchestration failed", append(attrs, "failure", res.Failure.Text())...)
	case store.StatusCompleted:
		e.log.Info("orchestration completed", attrs...)
	default:
		e.log.Info("orchestration ended", attrs...)
	}
}

// episode computes the commit of one episode. The returned execution (if any) is the live one,
// to be cached after a successful commit.
//
// With a Remote, the turn runs in the worker instead (there is no execution to cache), and done
// is set to the function that tells the worker how the commit went.
//
// from, when not nil, is the cached execution to run it on, taken from the cache by the caller
// (a merged completion): w's instance is then the one from cached.
func (e *Engine) episode(ctx context.Context, w store.OrchestrationWork, from *cached, done *func(error), sp *episodeSpans) (store.Episode, *replay.Execution, *replay.Result, error) {
	now := e.now()
	inst := w.Instance
	ep := store.Episode{Lease: w.Lease}
	var events []history.Event
	var rewind *history.Event
	for _, m := range w.Messages {
		ep.Consumed = append(ep.Consumed, m.ID)
		if m.ExecutionID != "" && m.ExecutionID != inst.ExecutionID {
			continue // meant for an earlier execution
		}
		ev, err := history.DecodeEvent(m.Data)
		if err != nil {
			e.log.Error("dropping undecodable message", "instanceId", inst.ID, "messageId", m.ID, "err", err)
			continue
		}
		if ev.Type == history.ExecutionRewound {
			// The store sets a rewound instance Running when it accepts the command
			// (Store.RewindInstance); older commands find it still Failed. Which it is, the
			// history says (see endedFailed, below).
			if rewind == nil && (inst.Status == store.StatusFailed || inst.Status == store.StatusRunning) {
				rewind = &ev
			}
			continue
		}
		if ev.Type == history.TimerFired {
			// Counted when delivered: an episode discarded for a lost lease delivers it again.
			e.opts.Metrics.TimerFired(now.Sub(ev.FireAt))
		}
		events = append(events, ev)
	}
	// An execution's start goes first: events that reached the inbox before it (raised while the
	// previous execution continued as new) come after it and its carried events, as the Durable
	// Task SDKs expect; replay buffers them either way.
	for i, ev := range events {
		if ev.Type == history.ExecutionStarted && i > 0 {
			copy(events[1:i+1], events[:i])
			events[0] = ev
			break
		}
	}
	if inst.Status.Terminal() && rewind == nil {
		// Late messages for a finished instance (activity results after terminate, timers, events):
		// consume them without touching the instance.
		ep.Instance = inst
		return ep, nil, nil, nil
	}

	// The version check needs only the instance row: an instance left for another host costs
	// this one no history read.
	mismatch := e.opts.Versioning.Check(inst.Version)
	if mismatch != nil && e.opts.Versioning.Failure != versioning.Fail {
		return ep, nil, nil, &rejectedError{mismatch: mismatch}
	}

	remote := e.opts.Remote
	var fn replay.Func
	if remote == nil {
		var ok bool
		if fn, ok = e.reg.Orchestrator(inst.Name); !ok {
			// The store hands out only the names the engine listed, so this is a store that
			// matches names differently from the registry. The instance is another host's
			// work: leave it (the lease runs out) rather than fail it for good.
			return ep, nil, nil, fmt.Errorf("the store handed out orchestrator %q, which is not registered here: it is left for a host that registers it", inst.Name)
		}
	}

	var exec, cached *replay.Execution
	var old []history.Event
	if from != nil {
		exec, sp.orch = from.exec, from.span
		cached = exec
	} else if remote == nil && rewind == nil && mismatch == nil {
		exec, sp.orch = e.cache.take(inst.ID, inst.ExecutionID, inst.HistoryLen)
		cached = exec
	} else if remote == nil {
		_, _ = e.cache.take(inst.ID, "", -1) // drop it: a rewind replays from the start
	}
	if exec == nil && inst.HistoryLen > 0 {
		chunks, err := e.st.History(ctx, inst.ID)
		if err != nil {
			return ep, nil, nil, fmt.Errorf("load history: %w", err)
		}
		if old, err = history.DecodeAll(chunks); err != nil {
			return ep, nil, nil, err
		}
		e.opts.Metrics.Replay(inst.Name, len(old))
	}
	if rewind != nil && !endedFailed(old) {
		rewind = nil // the execution did not end in a failure (a rewind that came twice): nothing to rewind
		if inst.Status.Terminal() {
			ep.Instance = inst
			return ep, nil, nil, nil
		}
	}
	if mismatch != nil {
		return e.failVersion(ctx, ep, inst, old, events, mismatch, now)
	}
	if exec == nil && remote == nil {
		exec = e.newExecution(fn)
	}

	newEvents := []history.Event{history.New(history.OrchestratorStarted, now)}
	var reruns []history.Event
	var reopened []history.Event
	if rewind != nil {
		ids, scheduled := failedAtEnd(old)
		// Tasks still open at the failure may have delivered their results while the instance
		// was Failed, and such results are dropped: the rewind runs those again too.
		for _, s := range openAtEnd(old, ids) {
			if s.Type == history.TaskScheduled {
				ids, scheduled = append(ids, s.ID), append(scheduled, s)
			} else {
				reopened = append(reopened, s)
			}
		}
		rewind.Time = now
		rewind.Voided = ids
		newEvents = append(newEvents, *rewind)
		// Each re-run is recorded as scheduled again, now, so that its completion pairs with its
		// own scheduling event where history is shown (name, input, scheduled time, a bar of its
		// own); replay skips these copies (see replay's voided).
		for _, s := range scheduled {
			s.Time = now
			reruns = append(reruns, s)
		}
		newEvents = append(newEvents, reruns...)
	}
	newEvents = append(newEvents, events...)

	var res *replay.Result
	var parent *history.Parent
	var err error
	if remote != nil {
		res, *done, err = remote.Orchestrate(ctx, Turn{Instance: inst, Claim: w.Claim(), Past: old, New: newEvents})
		if err != nil {
			return ep, nil, nil, err
		}
		// Kept in the history (once, and again only when it changes) for the worker's next
		// turns: no column of the store's for it.
		if ws := res.WorkerSpan; ws != nil {
			if last := history.LastWorkerSpan(old); last == nil || last.SpanID != ws.SpanID || !last.Start.Equal(ws.Start) {
				newEvents[0].WorkerSpan = ws
			}
		}
	} else {
		res, err = exec.Run(old, newEvents)
	}
	// A cached execution comes without its history: its context knows the parent.
	started := startOf(old, newEvents)
	if exec != nil {
		started.Parent = exec.Context().Parent()
	}
	parent = started.Parent
	if cached == nil {
		sp.orch = e.orchSpanOf(started, inst)
		sp.orch.rewound = rewind != nil || rewoundIn(old)
	} else {
		started.Trace = sp.orch.parent // kept with the execution, whose history is not loaded
	}
	sp.info = tracing.Info{Name: inst.Name, Version: inst.Version, InstanceID: inst.ID, ExecutionID: inst.ExecutionID}
	sp.began = now
	// The re-runs of a rewind are new tasks: spans of their own, under this execution's span
	// (their copies carry the failed attempts' trace contexts, or none).
	for i := range reruns {
		reruns[i].Trace = sp.orch.children
		if e.tracer.KeepsIDs() {
			reruns[i].Trace = sp.orch.o.NewChild()
		}
		newEvents[2+i].Trace = reruns[i].Trace // after OrchestratorStarted and ExecutionRewound
	}
	if e.tracer.On() {
		for _, ev := range newEvents {
			if ev.Type == history.TimerFired {
				sp.timers = append(sp.timers, ev)
			}
		}
		if sp.orch.open == nil {
			sp.fillOpen(old)
		}
		sp.track(newEvents, true)
	}
	// failWith fails the instance without running the orchestrator further: the episode records
	// its new events and the failure, and none of the orchestrator's actions.
	failWith := func(f *history.Failure) (store.Episode, *replay.Execution, *replay.Result, error) {
		e.closeExec(exec)
		locks, err := e.heldLocks(ctx, inst, old, newEvents, cached)
		if err != nil {
			return ep, nil, nil, err
		}
		ep.Instance = inst
		if err := e.finishFailed(&ep, newEvents, f, locks, now); err != nil {
			return ep, nil, nil, err
		}
		if err := notifyParent(&ep, parent, inst.ID, store.StatusFailed, nil, f, now); err != nil {
			return ep, nil, nil, err
		}
		sp.failed = f // for its span: the instance ended here, with no result
		return ep, nil, nil, nil
	}
	if err != nil {
		var nd *replay.NonDeterminismError
		var pe *replay.PanicError
		switch {
		case errors.As(err, &nd):
			e.log.Error("orchestration failed: non-deterministic code", "instanceId", inst.ID, "name", inst.Name, "err", err)
			return failWith(&history.Failure{Type: "NonDeterminismError", Message: err.Error()})
		case errors.As(err, &pe):
			e.log.Error("orchestration failed: it panicked while replaying its history", "instanceId", inst.ID, "name", inst.Name,
				"panic", pe.Failure.Message, "stack", pe.Failure.StackTrace)
			return failWith(pe.Failure)
		default:
			e.closeExec(exec)
			return ep, nil, nil, err
		}
	}
	if f := checkEntityActions(res.Actions); f != nil {
		// A store refuses such a message, and a commit it refuses would be retried for ever.
		e.log.Error("orchestration failed: it sent an entity message to an ID that is not an entity's",
			"instanceId", inst.ID, "name", inst.Name, "err", f.Message)
		return failWith(f)
	}

	if e.tracer.On() {
		e.traceActions(sp, res.Actions)
		sp.track(res.Actions, false)
	}
	// The episode's patch markers go before its actions: the code that asked for them ran before
	// it scheduled what follows (and replay looks them up by name, wherever they are).
	chunk := append(append(newEvents, res.Markers...), res.Actions...)
	inst.Status = res.Status
	inst.CustomStatus = res.CustomStatus
	inst.UpdatedAt = now
	if rewind != nil {
		inst.Output, inst.Failure = nil, nil
		if err := e.rerun(ctx, &ep, inst, reruns, reopened, rewind.Input, now); err != nil {
			return ep, nil, nil, err
		}
	}
	if err := e.effects(&ep, inst, res.Actions, sp.orch.children, now); err != nil {
		return ep, nil, nil, err
	}
	if res.Done {
		locks, err := e.heldLocks(ctx, inst, old, chunk, cached)
		if err != nil {
			return ep, nil, nil, err
		}
		if err := e.finish(&ep, &inst, started, res, locks, now, &chunk); err != nil {
			return ep, nil, nil, err
		}
	}
	if len(chunk) > 0 && !ep.ResetHistory {
		data, err := history.Encode(chunk)
		if err != nil {
			return ep, nil, nil, err
		}
		ep.History = [][]byte{data}
	}
	ep.Instance = inst
	return ep, exec, res, nil
}

// newExecution returns a new execution of fn under the deadlock detector.
func (e *Engine) newExecution(fn replay.Func) *replay.Execution {
	x := replay.New(fn)
	x.SetYieldTimeout(e.opts.DeadlockTimeout)
	return x
}

// endedFailed reports whether the execution's history ends in its failure: the last
// ExecutionCompleted failed and no rewind came after it.
func endedFailed(old []history.Event) bool {
	for i := len(old) - 1; i >= 0; i-- {
		switch old[i].Type {
		case history.ExecutionCompleted:
			return old[i].Status == int(store.StatusFailed)
		case history.ExecutionRewound:
			return false
		}
	}
	return false
}

// failedAtEnd finds the failures a rewind runs again: the task and sub-orchestration failures
// after which the orchestrator scheduled nothing (so no later decision depended on them), and
// returns their task IDs with the scheduling events to run again.
func failedAtEnd(old []history.Event) ([]int32, []history.Event) {
	scheduled := map[int32]history.Event{}
	for _, ev := range old {
		if ev.Type.Scheduling() {
			scheduled[ev.ID] = ev
		}
	}
	var ids []int32
	var evs []history.Event
	for i := len(old) - 1; i >= 0; i-- {
		ev := old[i]
		if ev.Type.Scheduling() || ev.Type == history.ExecutionRewound {
			break
		}
		if ev.Type == history.TaskFailed || ev.Type == history.SubOrchestrationInstanceFailed {
			if s, ok := scheduled[ev.TaskID]; ok {
				ids = append(ids, ev.TaskID)
				evs = append(evs, s)
			}
		}
	}
	return ids, evs
}

// openAtEnd returns the scheduling events of the activities, timers and sub-orchestrations that
// have no result in old (a rewind's re-runs count as open again until their next result), in
// task ID order, leaving out those in failed (which failedAtEnd runs again already).
func openAtEnd(old []history.Event, failed []int32) []history.Event {
	open := map[int32]history.Event{}
	scheduled := map[int32]history.Event{}
	for _, ev := range old {
		switch ev.Type {
		case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationInstanceCreated:
			scheduled[ev.ID] = ev
			open[ev.ID] = ev
		case history.TaskCompleted, history.TaskFailed, history.TimerFired,
			history.SubOrchestrationInstanceCompleted, history.SubOrchestrationInstanceFailed:
			delete(open, ev.TaskID)
		case history.ExecutionRewound:
			for _, id := range ev.Voided {
				if s, ok := scheduled[id]; ok {
					open[id] = s
				}
			}
		}
	}
	for _, id := range failed {
		delete(open, id)
	}
	evs := make([]history.Event, 0, len(open))
	for _, s := range open {
		evs = append(evs, s)
	}
	slices.SortFunc(evs, func(a, b history.Event) int { return cmp.Compare(a.ID, b.ID) })
	return evs
}

// rerun schedules again the activities and sub-orchestrations a rewind voided, and brings back
// the results of timers and sub-orchestrations that were open at the failure (reopened): a
// timer's message is sent again for its time, and a child that finished meanwhile has its
// result sent again (one still running sends it when it ends). A result that was not dropped
// after all arrives twice, and replay ignores the second.
func (e *Engine) rerun(ctx context.Context, ep *store.Episode, inst store.Instance, scheduled, reopened []history.Event, reason json.RawMessage, now time.Time) error {
	for _, s := range reopened {
		switch s.Type {
		case history.TimerCreated:
			if err := e.effects(ep, inst, []history.Event{s}, nil, now); err != nil { // its message, as when it was created
				return err
			}
		case history.SubOrchestrationInstanceCreated:
			child, err := e.st.GetInstance(ctx, s.InstanceID)
			if errors.Is(err, store.ErrNotFound) {
				continue // purged: nothing to bring back
			}
			if err != nil {
				return fmt.Errorf("rewind: read sub-orchestration %q: %w", s.InstanceID, err)
			}
			if child.ParentID != inst.ID || !child.Status.Terminal() {
				continue
			}
			p := &history.Parent{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, TaskID: s.ID}
			if err := notifyParent(ep, p, child.ID, child.Status, child.Output, history.DecodeFailure(child.Failure), now); err != nil {
				return err
			}
		}
	}
	for _, s := range scheduled {
		switch s.Type {
		case history.TaskScheduled:
			data, err := history.EncodeEvent(s)
			if err != nil {
				return err
			}
			ep.Tasks = append(ep.Tasks, store.Task{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, Name: s.Name, Data: data})
		case history.SubOrchestrationInstanceCreated:
			m, err := control.Message(s.InstanceID, "", control.Command(history.ExecutionRewound, reason, e.now()))
			if err != nil {
				return err
			}
			ep.Messages = append(ep.Messages, m)
		}
	}
	return nil
}

// effects turns new scheduling events into activity tasks, timer messages, sub-orchestrations,
// sent events and entity messages (see entityMessage).
//
// parentTrace is the parent trace context of the activities and sub-orchestrations that do not
// carry their own (a gRPC worker's): see orchSpan.
func (e *Engine) effects(ep *store.Episode, inst store.Instance, actions []history.Event, parentTrace *history.TraceContext, now time.Time) error {
	for _, a := range actions {
		if a.Trace == nil && parentTrace != nil && (a.Type == history.TaskScheduled || a.Type == history.SubOrchestrationInstanceCreated) {
			a.Trace = parentTrace
		}
		switch a.Type {
		case history.TaskScheduled:
			data, err := history.EncodeEvent(a)
			if err != nil {
				return err
			}
			ep.Tasks = append(ep.Tasks, store.Task{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, Name: a.Name, Data: data})
		case history.TimerCreated:
			fired := history.New(history.TimerFired, a.FireAt)
			fired.TaskID, fired.FireAt = a.ID, a.FireAt
			m, err := control.Message(inst.ID, inst.ExecutionID, fired)
			if err != nil {
				return err
			}
			m.VisibleAt = a.FireAt
			ep.Messages = append(ep.Messages, m)
		case history.SubOrchestrationInstanceCreated:
			parent := &history.Parent{InstanceID: inst.ID, ExecutionID: inst.ExecutionID, TaskID: a.ID, Name: inst.Name}
			start := control.StartEvent(a.InstanceID, control.NewID(), a.Name, a.Input, parent, now)
			start.Version, start.Tags, start.Trace = a.Version, a.Tags, a.Trace
			sub, sm, err := control.NewInstance(start)
			if err != nil {
				return err
			}
			conflict := history.New(history.SubOrchestrationInstanceFailed, now)
			conflict.TaskID = a.ID
			conflict.Failure = &history.Failure{
				Type:    "InstanceExists",
				Message: fmt.Sprintf("cannot start sub-orchestration %q: an active instance with ID %q already exists", a.Name, a.InstanceID),
			}
			cm, err := control.Message(inst.ID, inst.ExecutionID, conflict)
			if err != nil {
				return err
			}
			ep.Starts = append(ep.Starts, store.Start{Instance: sub, Message: sm, OnConflict: cm})
		case history.EventSent:
			raised := history.New(history.EventRaised, now)
			raised.Name, raised.Input = a.Name, a.Input
			m, err := control.Message(a.InstanceID, "", raised)
			if err != nil {
				return err
			}
			ep.Messages = append(ep.Messages, m)
		case history.EntityOperationSignaled, history.EntityOperationCalled, history.EntityLockRequested, history.EntityUnlockSent:
			m, err := entityMessage(inst, a, now)
			if err != nil {
				return err
			}
			ep.EntityMessages = append(ep.EntityMessages, m)
		}
	}
	return nil
}

// finish records the end of an execution: the completion event, the instance's final state, the
// parent's notification, recursive termination, or the start of the next generation; and the
// release of the entity locks it holds (locks; see heldLocks).
func (e *Engine) finish(ep *store.Episode, inst *store.Instance, started history.Event, res *replay.Result, locks []history.Lock, now time.Time, chunk *[]history.Event) error {
	parent := started.Parent
	if err := unlockAll(ep, *inst, locks, now); err != nil { // before continue-as-new renews the execution ID
		return err
	}
	done := history.New(history.ExecutionCompleted, now)
	done.Status = int(res.Status)
	switch res.Status {
	case store.StatusCompleted:
		inst.Output, done.Result = res.Output, res.Output
	case store.StatusTerminated:
		inst.Output, done.Result = res.Output, res.Output
	case store.StatusFailed:
		if err := setFailed(inst, res.Failure); err != nil {
			return err
		}
		done.Failure = res.Failure
	case store.StatusContinuedAsNew:
		execID := control.NewID()
		start := control.StartEvent(inst.ID, execID, inst.Name, res.ContinueAsNew.Input, parent, now)
		start.Carried = res.ContinueAsNew.Carried
		start.Version, start.Tags = cmp.Or(res.ContinueAsNew.Version, inst.Version), inst.Tags
		start.Trace = started.Trace // the next execution stays in the caller's trace
		m, err := control.Message(inst.ID, execID, start)
		if err != nil {
			return err
		}
		ep.Messages = append(ep.Messages, m)
		ep.ResetHistory = true
		inst.ExecutionID, inst.Input, inst.Output, inst.Failure = execID, res.ContinueAsNew.Input, nil, nil
		inst.Version = cmp.Or(res.ContinueAsNew.Version, inst.Version)
		*chunk = nil
		return nil
	}
	*chunk = append(*chunk, done)

	if res.Status == store.StatusTerminated && res.Recursive {
		for _, sub := range res.OpenSubOrchestrations {
			m, err := control.Message(sub, "", control.Terminated(res.Output, true, now))
			if err != nil {
				return err
			}
			ep.Messages = append(ep.Messages, m)
		}
	}
	return notifyParent(ep, parent, inst.ID, res.Status, res.Output, res.Failure, now)
}

// startOf returns the execution's start event (parent, version, tags); the zero event when the
// execution has none yet.
func startOf(old, new []history.Event) history.Event {
	for _, evs := range [][]history.Event{old, new} {
		for _, ev := range evs {
			if ev.Type == history.ExecutionStarted {
				return ev
			}
		}
	}
	return history.Event{}
}

// notifyParent tells the parent of a sub-orchestration (p; nil for none) how it ended.
func notifyParent(ep *store.Episode, p *history.Parent, id string, status store.Status, output []byte, f *history.Failure, now time.Time) error {
	if p == nil {
		return nil
	}
	var ev history.Event
	switch status {
	case store.StatusCompleted:
		ev = history.New(history.SubOrchestrationInstanceCompleted, now)
		ev.Result = output
	case store.StatusTerminated:
		ev = history.New(history.SubOrchestrationInstanceFailed, now)
		ev.Failure = &history.Failure{Type: "Terminated", Message: fmt.Sprintf("sub-orchestration %q was terminated: %s", id, string(output))}
	default:
		ev = history.New(history.SubOrchestrationInstanceFailed, now)
		ev.Failure = f
	}
	ev.TaskID = p.TaskID
	m, err := control.Message(p.InstanceID, p.ExecutionID, ev)
	if err != nil {
		return err
	}
	ep.Messages = append(ep.Messages, m)
	return nil
}

// finishFailed fails the instance without running the orchestrator further, and releases the
// entity locks it holds (locks; see heldLocks).
func (e *Engine) finishFailed(ep *store.Episode, chunk []history.Event, f *history.Failure, locks []history.Lock, now time.Time) error {
	if err := unlockAll(ep, ep.Instance, locks, now); err != nil {
		return err
	}
	done := history.New(history.ExecutionCompleted, now)
	done.Status, done.Failure = int(store.StatusFailed), f
	chunk = append(chunk, done)
	data, err := history.Encode(chunk)
	if err != nil {
		return err
	}
	ep.History = [][]byte{data}
	ep.Instance.Status = store.StatusFailed
	ep.Instance.UpdatedAt = now
	return setFailed(&ep.Instance, f)
}

// setFailed records failure details in a failed instance: the details, and their message as the
// output, where Durable Functions clients look for it.
func setFailed(inst *store.Instance, f *history.Failure) error {
	data, err := history.EncodeFailure(f)
	if err != nil {
		return err
	}
	inst.Failure = data
	inst.Output, err = json.Marshal(f.Message)
	return err
}

// runActivity runs one activity task and commits its result.
func (e *Engine) runActivity(w store.ActivityWork) {
	started := time.Now()
	ev, err := history.DecodeEvent(w.Task.Data)
	var result history.Event
	done := func(error) {} // a Remote's, told how the completion went
	defer func() { done(err) }()
	if err != nil {
		result = history.New(history.TaskFailed, e.now())
		result.Failure = &history.Failure{Type: "CorruptTask", Message: err.Error()}
	} else if e.opts.Remote != nil {
		var rerr error
		result, done, rerr = e.opts.Remote.Activity(e.actCtx, ActivityTurn{Task: w.Task, Claim: w.Claim(), Scheduled: ev})
		if rerr != nil {
			// Not run: given back (the stream ended, or the worker abandoned it), or shutdown.
			done = func(error) {}
			e.log.Info("activity given back by its worker; it runs again", "instanceId", w.Task.InstanceID, "name", ev.Name, "reason", rerr)
			return
		}
		result.TaskID = ev.ID
	} else {
		fn, ok := e.reg.Activity(ev.Name)
		if !ok {
			// As for orchestrators (see episode): another host's work, left to its lease.
			e.log.Error("the store handed out an activity that is not registered here; it is left for a host that registers it",
				"instanceId", w.Task.InstanceID, "name", ev.Name)
			return
		}
		result = e.callActivity(w, ev, fn)
		result.TaskID = ev.ID
		if result.Type == history.TaskFailed && e.actCtx.Err() != nil {
			// Shutdown cancelled it: the failure is ours, not the activity's. Leave the task to
			// run again (its lease is being released) instead of recording a failure.
			e.log.Info("activity interrupted by shutdown; it will run again", "instanceId", w.Task.InstanceID, "name", ev.Name)
			return
		}
	}
	ran := time.Since(started)
	var m store.Message
	m, err = control.Message(w.Task.InstanceID, w.Task.ExecutionID, result)
	if err != nil {
		e.log.Error("encoding activity result", "instanceId", w.Task.InstanceID, "err", err)
		return
	}
	attrs := []any{"instanceId", w.Task.InstanceID, "activity", w.Task.Name}
	if !e.completeMerged(w, m) {
		err = e.retry("committing activity result", attrs, func(ctx context.Context) error {
			return e.st.CompleteActivity(ctx, w.Task.ID, w.Lease, m)
		})
	}
	switch {
	case err == nil:
		outcome := metrics.Completed
		if result.Type == history.TaskFailed {
			outcome = metrics.Failed
		}
		var wait time.Duration
		if !ev.Time.IsZero() {
			wait = started.Sub(ev.Time)
		}
		e.opts.Metrics.Activity(w.Task.Name, outcome, wait, ran)
	case errors.Is(err, store.ErrClosed):
	case errors.Is(err, store.ErrLeaseLost):
		e.opts.Metrics.LeaseLost(metrics.KindActivity)
		e.log.Warn("activity result discarded: lease lost (the task runs again), or applied by an attempt whose reply was lost", attrs...)
	default:
		e.log.Error("activity result not recorded, given up: the activity runs again when its lease expires", append(attrs, "err", err)...)
	}
}

func (e *Engine) callActivity(w store.ActivityWork, ev history.Event, fn ActivityFunc) (result history.Event) {
	start := time.Now()
	info := ActivityInfo{InstanceID: w.Task.InstanceID, TaskID: ev.ID, Name: ev.Name, Version: ev.Version, Attempt: max(ev.Attempt, 1)}
	ctx := context.WithValue(e.actCtx, activityInfoKey{}, info)
	attrs := []any{"instanceId", info.InstanceID, "name", info.Name, "taskId", info.TaskID, "attempt", info.Attempt}
	if sc := tracing.Parse(ev.Trace); sc.IsValid() && !e.tracer.On() {
		// Tracing is off here, but the caller traces: the activity's own spans join its trace.
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, span := e.tracer.StartActivity(ctx, ev.Trace, ev.Name, info.InstanceID, ev.ID)
	if span != nil && e.log.Enabled(ctx, slog.LevelInfo) {
		attrs = append(attrs, tracing.LogAttrs(span.SpanContext())...)
	}
	e.log.Info("activity started", attrs...)
	defer func() {
		if r := recover(); r != nil {
			result = history.New(history.TaskFailed, e.now())
			result.Failure = &history.Failure{
				Type:       "panic",
				Message:    fmt.Sprintf("activity %q panicked: %v", ev.Name, r),
				StackTrace: string(debug.Stack()),
			}
		}
		attrs = append(attrs, "latency", time.Since(start))
		if result.Type == history.TaskFailed {
			e.log.Warn("activity failed", append(attrs, "error", result.Failure.Message)...)
			tracing.End(span, errors.New(result.Failure.Message))
		} else {
			e.log.Info("activity completed", attrs...)
			tracing.End(span, nil)
		}
	}()
	out, err := fn(ctx, ev.Input)
	if err != nil {
		result = history.New(history.TaskFailed, e.now())
		result.Failure = replay.FailureFromError(err)
		return result
	}
	result = history.New(history.TaskCompleted, e.now())
	result.Result = out
	return result
}

func (e *Engine) activityLoop() {
	e.dispatch(store.ActivityWorkKind, e.actSlots, e.actPoke, &e.actStarved, func(ctx context.Context, max int) (int, error) {
		work, err := e.st.ClaimActivities(ctx, e.opts.Owner, e.claimNames(store.ActivityWorkKind), max, e.opts.LeaseDuration)
		if err != nil {
			return 0, err
		}
		for _, w := range work {
			// Renewed from here on: the slot may be slow to come when local dispatch took the
			// free slots between the claim and now.
			e.held.add(w.Claim())
			e.actSlots <- struct{}{}
			e.startActivity(w)
		}
		return len(work), nil
	}, false)
}

// startActivity runs w, already held (renewed) and in a slot it took, in a goroutine that
// gives both back when it ends.
func (e *Engine) startActivity(w store.ActivityWork) {
	e.acts.Add(1)
	go func() {
		defer func() {
			e.held.remove(w.Claim())
			<-e.actSlots
			e.acts.Done()
			e.slotFreed()
		}()
		e.runActivity(w)
	}()
}

// slotFreed pokes the activity dispatcher after activity slots were given back, if it may have
// left work for want of one (see dispatch).
func (e *Engine) slotFreed() {
	if e.actStarved.Load() {
		nudge(e.actPoke)
	}
}
