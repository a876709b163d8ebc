package engine

import (
	"context"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
)

// Orchestration versioning: an engine with a versioning.Policy runs only the instances whose
// version the policy allows. What it does with the others is the policy's failure strategy:
//
//   - Reject gives the claim back, for a host that runs the version: the lease is shortened to
//     a delay (RenewLeases with a short duration; no store change), after which any host may
//     claim the instance. The delay starts at Options.VersionRejectDelay and doubles each time
//     this engine rejects the same instance again, up to 5s (and a third of the lease duration), so that
//     a lone host that runs no compatible version does not spin on it, and one that does is kept
//     waiting by at most that much. Nothing is committed: the instance stays as it was.
//   - Fail fails the instance with a VersionMismatch failure, without running its orchestrator.
//
// Only orchestration episodes are checked. An activity task is created by an episode that ran on
// a host whose policy allowed the instance; any host that registers the activity may run it
// (ActivityInfo carries the version it was called with). Entities have no version.

// maxRejectDelay bounds the delay of an instance given back for its version: the time a host
// that runs the version may wait for it when it comes up after this one backed off.
const maxRejectDelay = 5 * time.Second

// rejectedError is what episode returns for an instance the policy leaves to another host.
type rejectedError struct{ mismatch error }

func (e *rejectedError) Error() string { return e.mismatch.Error() }

// rejects remembers, per instance, how often this engine gave it back in a row, for the backoff.
// Entries older than the longest delay are dropped as new ones come in, so a hub full of
// instances of other versions costs a bounded map.
type rejects struct {
	mu sync.Mutex
	m  map[string]rejectState
}

type rejectState struct {
	count int
	last  time.Time
}

// next records one more rejection of the instance and returns the delay to give it back for.
func (r *rejects) next(id string, first, longest time.Duration, now time.Time) (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]rejectState{}
	}
	st, ok := r.m[id]
	if !ok || now.Sub(st.last) > 2*longest {
		st = rejectState{}
	}
	d := first
	for i := 0; i < st.count && d < longest; i++ {
		d *= 2
	}
	d = min(d, longest)
	st.count++
	st.last = now
	if len(r.m) >= 1024 && !ok {
		for k, v := range r.m {
			if now.Sub(v.last) > 2*longest {
				delete(r.m, k)
			}
		}
	}
	r.m[id] = st
	return d, st.count
}

// forget drops the instance's backoff (an episode of it committed here).
func (r *rejects) forget(id string) {
	r.mu.Lock()
	if r.m != nil {
		delete(r.m, id)
	}
	r.mu.Unlock()
}

// reject gives the claim of an instance of another version back, after a delay that grows while
// this engine keeps getting it.
func (e *Engine) reject(w store.OrchestrationWork, rej *rejectedError) {
	first := e.opts.VersionRejectDelay
	longest := max(first, min(maxRejectDelay, e.opts.LeaseDuration/3))
	delay, n := e.rejects.next(w.Instance.ID, first, longest, time.Now())
	attrs := []any{"instanceId", w.Instance.ID, "name", w.Instance.Name, "version", w.Instance.Version,
		"workerVersion", e.opts.Versioning.Version, "matchStrategy", e.opts.Versioning.Match.String(),
		"reason", rej.mismatch.Error(), "retryAfter", delay, "rejections", n}
	if n == 1 {
		e.log.Info("orchestration left for a host that runs its version (versionFailureStrategy Reject)", attrs...)
	} else {
		e.log.Debug("orchestration left for a host that runs its version, again", attrs...)
	}
	// No longer renewed from here on: the renewer would lengthen the lease again. (A renewal
	// already under way may still land after the shortening; then the instance waits for its
	// full lease, once.)
	e.held.remove(w.Claim())
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration/3)
	defer cancel()
	if err := e.st.RenewLeases(ctx, e.opts.Owner, []store.Claim{w.Claim()}, delay); err != nil {
		e.log.Warn("giving back an orchestration of another version; other hosts can claim it when its lease expires", append(attrs, "err", err)...)
		return
	}
	// A renewal also announces this host as alive for as long as it asks (store/postgres keeps
	// sticky routing on it): renew that for a full lease again, or for the short delay other
	// hosts would take over the instances it has cached.
	if err := e.st.RenewLeases(ctx, e.opts.Owner, nil, e.opts.LeaseDuration); err != nil {
		e.log.Warn("renewing this host's liveness after giving back an orchestration", "err", err)
	}
}

// failVersion fails an instance whose version the policy does not run (versionFailureStrategy
// Fail): the episode records the new events and the failure, and the parent of a
// sub-orchestration is told. The orchestrator does not run.
func (e *Engine) failVersion(ctx context.Context, ep store.Episode, inst store.Instance, old, events []history.Event,
	mismatch error, now time.Time) (store.Episode, *replay.Execution, *replay.Result, error) {
	f := &history.Failure{Type: versioning.MismatchType, Message: mismatch.Error()}
	e.log.Warn("orchestration failed: its version is not one this host runs (versionFailureStrategy Fail)",
		"instanceId", inst.ID, "name", inst.Name, "version", inst.Version, "workerVersion", e.opts.Versioning.Version,
		"matchStrategy", e.opts.Versioning.Match.String(), "reason", f.Message)
	newEvents := append([]history.Event{history.New(history.OrchestratorStarted, now)}, events...)
	locks, err := e.heldLocks(ctx, inst, old, newEvents, nil)
	if err != nil {
		return ep, nil, nil, err
	}
	ep.Instance = inst
	if err := e.finishFailed(&ep, newEvents, f, locks, now); err != nil {
		return ep, nil, nil, err
	}
	if err := notifyParent(&ep, startOf(old, newEvents).Parent, inst.ID, store.StatusFailed, nil, f, now); err != nil {
		return ep, nil, nil, err
	}
	return ep, nil, nil, nil
}
