package engine

import (
	"context"
	"errors"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// Merged completions: when an activity this engine ran belongs to an instance whose live
// execution it has cached, the engine applies the result to that execution at once and
// commits the activity's completion, the instance's next episode and that episode's new tasks
// in one transaction (store.Completion), instead of completing the task (one transaction),
// claiming the instance (another) and committing the episode (a third). A sequential step then
// costs one durable commit.
//
// The store fences the commit as a claim would have: the task's lease must hold, and the
// instance must be unleased, still at the execution and history length the cache saw, with no
// message waiting. Whenever that is not so, or anything else goes wrong (the orchestrator fails
// to replay, the store errs, the reply is lost), the engine drops the execution it advanced and
// completes the task as it always did: the result goes to the inbox and the next episode runs
// from there, from the stored history. Nothing is applied twice: the task is deleted by
// whichever of the two commits succeeds, and the other is refused for its lost lease.

// completeMerged commits the completion of w (its result message m) with the episode of its
// result, when this engine holds the instance's execution. It reports whether it did; when it
// did not, nothing of it was applied, unless a lost reply hides that the commit was (then the
// task is gone and completing it is refused), and the caller completes the task as usual.
func (e *Engine) completeMerged(w store.ActivityWork, m store.Message) bool {
	if e.opts.DisableLocalDispatch || e.opts.Remote != nil || e.stopping() {
		return false
	}
	// An episode slot first: episodes are bounded wherever they run. (Shutdown waits for this
	// one as for the activity whose goroutine runs it.)
	select {
	case e.orchSlots <- struct{}{}:
	default:
		return false
	}
	defer func() { <-e.orchSlots }()
	from := e.cache.takeLive(w.Task.InstanceID, w.Task.ExecutionID)
	if from == nil {
		return false
	}
	inst := from.inst
	if e.opts.Versioning.Check(inst.Version) != nil || inst.Status.Terminal() {
		e.closeExec(from.exec) // cached before a policy it no longer meets: the inbox path decides
		return false
	}
	claimed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration)
	defer cancel()
	ow := store.OrchestrationWork{Instance: inst, Messages: []store.Message{m}}
	var done func(error)
	var sp episodeSpans
	ep, exec, res, err := e.episode(ctx, ow, from, &done, &sp)
	if err != nil || res == nil || exec == nil {
		// An orchestrator that fails to run, or fails the instance without running: the inbox
		// path runs it again from the stored history and handles what it finds.
		if exec != nil {
			e.closeExec(exec)
		}
		return false
	}
	ep.Consumed = nil // the result was never a message
	ep.Lease = store.Lease{}
	ep.Completes = &store.Completion{TaskID: w.Task.ID, Lease: w.Lease, ExecutionID: inst.ExecutionID, HistoryLen: inst.HistoryLen}
	reserved := e.reserveLocal(&ep)
	cctx, ccancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration/2)
	err = e.st.CommitEpisode(cctx, ep)
	ccancel()
	if err != nil {
		e.runLocal(ep.LeaseTasks, reserved, err)
		e.closeExec(exec) // advanced past what the store has
		if !errors.Is(err, store.ErrInstanceBusy) && !errors.Is(err, store.ErrLeaseLost) && !errors.Is(err, store.ErrClosed) {
			e.log.Warn("merged completion not committed; completing the activity through the inbox instead",
				"instanceId", inst.ID, "activity", w.Task.Name, "err", err)
		}
		return false
	}
	e.settle(ow, ep, exec, res, sp, claimed)
	e.runLocal(ep.LeaseTasks, reserved, nil)
	return true
}
