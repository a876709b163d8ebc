// Package storefault wraps a store.Store so that chosen calls fail, for tests of what the engine
// and the App do when storage fails (an I/O error, a full disk, a connection killed).
//
//	fs := storefault.Wrap(st)
//	fs.Fail(storefault.Fault{Method: "CommitEpisode", Times: 3})             // refused, nothing applied
//	fs.Fail(storefault.Fault{Method: "CompleteActivity", After: true, Times: 1}) // applied, reply lost
//
// A fault with After set applies the call and then reports the error, as a connection that
// breaks after the commit but before its reply does: the caller cannot tell it from a refusal.
package storefault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// ErrInjected is the error of a fault that names none.
var ErrInjected = errors.New("storefault: injected storage failure")

// Call is one call of a wrapped method, as a fault's Pick sees it.
type Call struct {
	Method     string // "CommitEpisode", "CompleteActivity", ...
	InstanceID string // the instance concerned, when the method has one
	N          int    // the calls of Method so far, this one included (1 for the first)
	// Merged marks a CommitEpisode of a merged completion (store.Episode.Completes): an
	// activity's completion with its instance's next episode.
	Merged bool
}

// Fault fails calls of one method.
type Fault struct {
	// Method is the store.Store method to fail: CommitEpisode, CompleteActivity, RenewLeases,
	// History, ReleaseLeases, SendEntityMessages or DeleteEntity. (Claims are left alone: a
	// failed claim changes nothing.)
	Method string
	Pick   func(Call) bool // which calls to fail; nil: all of them
	After  bool            // apply the call first and then fail it (a lost reply)
	Err    error           // the error returned; nil: ErrInjected
	Times  int             // fail at most this many calls; 0: no limit
}

// Store is a store.Store whose calls fail as its faults say. Methods not listed on Fault.Method
// pass through untouched.
type Store struct {
	store.Store

	mu     sync.Mutex
	faults []*fault
	calls  map[string]int
	failed map[string]int
}

type fault struct {
	Fault
	used int
}

// Wrap returns st wrapped, with no faults yet.
func Wrap(st store.Store) *Store {
	return &Store{Store: st, calls: map[string]int{}, failed: map[string]int{}}
}

// Fail adds a fault. Faults are checked in the order they were added; the first that picks a
// call fails it.
func (s *Store) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f})
}

// Clear removes every fault.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Failed returns how many calls of method the faults failed so far.
func (s *Store) Failed(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[method]
}

// decide counts the call and returns the fault that fails it, if any.
func (s *Store) decide(c Call) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[c.Method]++
	c.N = s.calls[c.Method]
	for _, f := range s.faults {
		if f.Method != c.Method || (f.Times > 0 && f.used >= f.Times) || (f.Pick != nil && !f.Pick(c)) {
			continue
		}
		f.used++
		s.failed[c.Method]++
		out := f.Fault
		if out.Err == nil {
			out.Err = ErrInjected
		}
		return &out
	}
	return nil
}

// run applies call unless a fault refuses it, and returns the fault's error or the call's.
func (s *Store) run(method, instanceID string, call func() error) error {
	return s.runCall(Call{Method: method, InstanceID: instanceID}, call)
}

// runCall is run for a call described by c (its N is set here).
func (s *Store) runCall(c Call, call func() error) error {
	method := c.Method
	f := s.decide(c)
	if f == nil {
		return call()
	}
	if f.After {
		if err := call(); err != nil {
			return err
		}
	}
	return fmt.Errorf("storefault: %s: %w", method, f.Err)
}

// CommitEpisode fails as the faults say.
func (s *Store) CommitEpisode(ctx context.Context, e store.Episode) error {
	c := Call{Method: "CommitEpisode", InstanceID: e.Instance.ID, Merged: e.Completes != nil}
	return s.runCall(c, func() error { return s.Store.CommitEpisode(ctx, e) })
}

// CompleteActivity fails as the faults say.
func (s *Store) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	return s.run("CompleteActivity", result.InstanceID, func() error {
		return s.Store.CompleteActivity(ctx, taskID, lease, result)
	})
}

// RenewLeases fails as the faults say.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []store.Claim, leaseFor time.Duration) error {
	return s.run("RenewLeases", "", func() error { return s.Store.RenewLeases(ctx, owner, claims, leaseFor) })
}

// ReleaseLeases fails as the faults say.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	return s.run("ReleaseLeases", "", func() error { return s.Store.ReleaseLeases(ctx, owner) })
}

// SendEntityMessages fails as the faults say. The instance a fault's Pick sees is the first
// message's.
func (s *Store) SendEntityMessages(ctx context.Context, msgs []store.Message) error {
	id := ""
	if len(msgs) > 0 {
		id = msgs[0].InstanceID
	}
	return s.run("SendEntityMessages", id, func() error { return s.Store.SendEntityMessages(ctx, msgs) })
}

// DeleteEntity fails as the faults say; a failed call reports that it removed nothing.
func (s *Store) DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error) {
	var removed bool
	err := s.run("DeleteEntity", id, func() error {
		var err error
		removed, err = s.Store.DeleteEntity(ctx, id, updatedAt)
		return err
	})
	if err != nil {
		return false, err
	}
	return removed, nil
}

// History fails as the faults say.
func (s *Store) History(ctx context.Context, id string) ([][]byte, error) {
	var h [][]byte
	err := s.run("History", id, func() error {
		var err error
		h, err = s.Store.History(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}
