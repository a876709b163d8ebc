package reprisetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// tracked is the harness's view of the store: it passes every call through and counts the work
// in progress, so that the harness can tell when nothing can happen any more without waiting a
// guessed time.
//
// Work is in progress while a call that claims or adds work runs (pending), and from a claim
// until the commit or completion that ends it (inflight, by item and lease token). Every such
// call that changed the store (it succeeded; a claim handed something out) adds one to gen and
// nudges changed, so that an idle check that read the store around a change sees gen move and
// looks again. Calls that changed nothing (a poll's empty claim, a failed commit) leave gen
// alone, so that polling is never mistaken for progress.
type tracked struct {
	store.Store

	mu       sync.Mutex
	pending  int
	inflight map[claimKey]struct{}
	gen      uint64
	changed  chan struct{} // capacity 1: a coalesced "something happened"
}

// claimKey names one claimed item: an instance (orchestration or entity) or an activity task,
// with the token of its claim (one claim call may hand out several items under one token).
type claimKey struct {
	instance string
	task     int64
	token    int64
}

func newTracked(st store.Store) *tracked {
	return &tracked{Store: st, inflight: map[claimKey]struct{}{}, changed: make(chan struct{}, 1)}
}

func (s *tracked) enter() {
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
}

// leave ends a call that entered, after update (if any) changed the claims in flight; changed
// says whether the call changed the store.
func (s *tracked) leave(changed bool, update func()) {
	s.mu.Lock()
	if update != nil {
		update()
	}
	s.pending--
	if changed {
		s.gen++
	}
	s.mu.Unlock()
	select { // also when nothing changed: pending did
	case s.changed <- struct{}{}:
	default:
	}
}

// busy reports whether work is in progress, and the generation it saw.
func (s *tracked) busy() (bool, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending > 0 || len(s.inflight) > 0, s.gen
}

// ended reports whether a commit or completion that returned err ended its claim: it did when
// it was applied, or refused for good; after other errors the engine tries again.
func ended(err error) bool {
	return err == nil || errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrClosed)
}

func (s *tracked) CreateInstance(ctx context.Context, inst store.Instance, start store.Message, policy store.ReusePolicy) error {
	s.enter()
	err := s.Store.CreateInstance(ctx, inst, start, policy)
	s.leave(err == nil, nil)
	return err
}

func (s *tracked) SendMessage(ctx context.Context, m store.Message) error {
	s.enter()
	err := s.Store.SendMessage(ctx, m)
	s.leave(err == nil, nil)
	return err
}

func (s *tracked) SendEntityMessages(ctx context.Context, msgs []store.Message) error {
	s.enter()
	err := s.Store.SendEntityMessages(ctx, msgs)
	s.leave(err == nil, nil)
	return err
}

func (s *tracked) RewindInstance(ctx context.Context, id string, m store.Message) error {
	s.enter()
	err := s.Store.RewindInstance(ctx, id, m)
	s.leave(err == nil, nil)
	return err
}

func (s *tracked) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	s.enter()
	work, err := s.Store.ClaimOrchestrations(ctx, owner, names, max, leaseFor)
	s.leave(len(work) > 0, func() {
		for _, w := range work {
			s.inflight[claimKey{instance: w.Instance.ID, token: w.Lease.Token}] = struct{}{}
		}
	})
	return work, err
}

func (s *tracked) ClaimEntities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	s.enter()
	work, err := s.Store.ClaimEntities(ctx, owner, names, max, leaseFor)
	s.leave(len(work) > 0, func() {
		for _, w := range work {
			s.inflight[claimKey{instance: w.Instance.ID, token: w.Lease.Token}] = struct{}{}
		}
	})
	return work, err
}

func (s *tracked) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	s.enter()
	work, err := s.Store.ClaimActivities(ctx, owner, names, max, leaseFor)
	s.leave(len(work) > 0, func() {
		for _, w := range work {
			s.inflight[claimKey{task: w.Task.ID, token: w.Lease.Token}] = struct{}{}
		}
	})
	return work, err
}

func (s *tracked) CommitEpisode(ctx context.Context, e store.Episode) error {
	s.enter()
	err := s.Store.CommitEpisode(ctx, e)
	s.leave(ended(err), func() {
		if c := e.Completes; c != nil && ended(err) {
			// A merged completion ends its task's claim (it had no claim of the instance); one
			// refused otherwise leaves the task to CompleteActivity.
			delete(s.inflight, claimKey{task: c.TaskID, token: c.Lease.Token})
		} else if ended(err) {
			delete(s.inflight, claimKey{instance: e.Instance.ID, token: e.Lease.Token})
		}
		if err == nil && e.LeaseTasks != nil {
			// Tasks the commit leased to the engine (local dispatch) are claimed by it, as a
			// ClaimActivities would have claimed them.
			for _, w := range e.LeaseTasks.Leased {
				s.inflight[claimKey{task: w.Task.ID, token: w.Lease.Token}] = struct{}{}
			}
		}
	})
	return err
}

func (s *tracked) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	s.enter()
	err := s.Store.CompleteActivity(ctx, taskID, lease, result)
	s.leave(ended(err), func() {
		if ended(err) {
			delete(s.inflight, claimKey{task: taskID, token: lease.Token})
		}
	})
	return err
}

func (s *tracked) ReleaseLeases(ctx context.Context, owner string) error {
	s.enter()
	err := s.Store.ReleaseLeases(ctx, owner)
	s.leave(true, func() { clear(s.inflight) })
	return err
}

// inflightCount is the number of claims not yet ended, for the stall report.
func (s *tracked) inflightCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}
