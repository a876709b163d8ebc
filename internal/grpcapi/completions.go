package grpcapi

// Completions: the items sent on the streams and waiting for their workers' answers, and the
// RPCs that answer them (CompleteOrchestratorTask, CompleteActivityTask, the abandons).

import (
	"context"
	"errors"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/store"
)

// commitStatus is what a completion RPC answers once the engine has tried to commit it.
func commitStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrLeaseLost):
		return status.Error(codes.NotFound, "the completion was not applied: the work item's lease was lost (it ran out, or the instance was replaced or purged); it is delivered again if still due")
	case errors.Is(err, store.ErrClosed):
		return status.Error(codes.Unavailable, "the server is shutting down; the work item is delivered again")
	case errors.Is(err, store.ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	default:
		return status.Errorf(codes.Unavailable, "the completion could not be committed (%v); the work item is delivered again", err)
	}
}

// completion is a worker's answer to one work item.
type completion struct {
	orch      *pb.OrchestratorResponse
	act       *pb.ActivityResponse
	ent       *pb.EntityBatchResult
	abandoned bool
	result    chan error // the RPC's answer, once the engine is done with it; buffered
}

// pending is a work item sent and not yet completed.
type pending struct {
	token string
	key   dispatchKey
	reply chan completion // buffered 1: a pending is taken once
}

type dispatchKey struct {
	hub, instance string
	task          int32 // -1 for an orchestration turn, entityTask for an entity batch
}

// entityTask is the task of an entity batch's dispatchKey.
const entityTask = -2

// kind returns the kind of the item: what completes it.
func (k dispatchKey) kind() string {
	switch {
	case k.task == -1:
		return "an orchestrator work item (CompleteOrchestratorTask)"
	case k.task == entityTask:
		return "an entity work item (CompleteEntityTask)"
	default:
		return "an activity work item (CompleteActivityTask)"
	}
}

// kind returns the kind of work item that a completion completes; "" for an abandon, which
// gives back an item of any kind.
func (c completion) kind() string {
	switch {
	case c.orch != nil:
		return dispatchKey{task: -1}.kind()
	case c.ent != nil:
		return dispatchKey{task: entityTask}.kind()
	case c.act != nil:
		return dispatchKey{}.kind()
	}
	return ""
}

// dispatched is the items sent on every stream and not yet completed, by completion token and,
// for workers that send none (older SDKs), by instance (and task).
type dispatched struct {
	mu      sync.Mutex
	byToken map[string]*pending
	byKey   map[dispatchKey]*pending
}

func (d *dispatched) init() {
	d.byToken = map[string]*pending{}
	d.byKey = map[dispatchKey]*pending{}
}

func (d *dispatched) add(hub, instance string, task int32) *pending {
	p := &pending{token: control.NewID(), key: dispatchKey{strings.ToLower(hub), instance, task}, reply: make(chan completion, 1)}
	d.mu.Lock()
	d.byToken[p.token] = p
	d.byKey[p.key] = p
	d.mu.Unlock()
	return p
}

// take removes and returns the pending item of token, or (with no token) of the key. An item of
// another kind than kind ("" for any) is left waiting and returned with wrong set.
func (d *dispatched) take(token string, key dispatchKey, kind string) (p *pending, wrong bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if token != "" {
		p = d.byToken[token]
	} else {
		p = d.byKey[key]
	}
	if p == nil {
		return nil, false
	}
	if kind != "" && p.key.kind() != kind {
		return p, true
	}
	delete(d.byToken, p.token)
	if d.byKey[p.key] == p {
		delete(d.byKey, p.key)
	}
	return p, false
}

// drop removes p when its waiter leaves. If a completion took p meanwhile (a tokenless one can
// match an item that was never sent), that completion is answered answer: nothing was applied.
func (d *dispatched) drop(p *pending, answer error) {
	d.mu.Lock()
	_, waiting := d.byToken[p.token]
	if waiting {
		delete(d.byToken, p.token)
		if d.byKey[p.key] == p {
			delete(d.byKey, p.key)
		}
	}
	d.mu.Unlock()
	if !waiting {
		c := <-p.reply // taken: its completion is handed over without blocking
		c.result <- answer
	}
}

// size returns the number of items waiting for a completion; tests use it to find leaks.
func (d *dispatched) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byToken)
}

var errNoItem = "no work item with this completion token is waiting: it was completed already, or given back (its stream ended, it was abandoned, or its lease ran out) and is delivered again"

// complete hands a completion to the item waiting for it and returns the RPC's answer.
func (s *Service) complete(ctx context.Context, token string, key dispatchKey, c completion) error {
	p, wrong := s.dispatched.take(token, key, c.kind())
	if p == nil {
		return status.Error(codes.NotFound, errNoItem)
	}
	if wrong {
		return status.Errorf(codes.InvalidArgument, "the completion token is of %s, not of %s; the item still waits for its completion", p.key.kind(), c.kind())
	}
	c.result = make(chan error, 1)
	p.reply <- c
	select {
	case err := <-c.result:
		return err
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// CompleteOrchestratorTask commits a worker's turn and answers once it is committed: NOT_FOUND
// when the item is not waiting (a stale or forged token) or its lease was lost.
func (s *Service) CompleteOrchestratorTask(ctx context.Context, r *pb.OrchestratorResponse) (*pb.CompleteTaskResponse, error) {
	h, err := s.hub(ctx)
	if err != nil {
		return nil, err
	}
	key := dispatchKey{strings.ToLower(h.Name), r.InstanceId, -1}
	if err := s.complete(ctx, r.CompletionToken, key, completion{orch: r}); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// CompleteActivityTask records an activity's result, as CompleteOrchestratorTask.
func (s *Service) CompleteActivityTask(ctx context.Context, r *pb.ActivityResponse) (*pb.CompleteTaskResponse, error) {
	h, err := s.hub(ctx)
	if err != nil {
		return nil, err
	}
	key := dispatchKey{strings.ToLower(h.Name), r.InstanceId, r.TaskId}
	if err := s.complete(ctx, r.CompletionToken, key, completion{act: r}); err != nil {
		return nil, err
	}
	return &pb.CompleteTaskResponse{}, nil
}

// AbandonTaskOrchestratorWorkItem gives a turn back: it is delivered again after a short delay.
func (s *Service) AbandonTaskOrchestratorWorkItem(ctx context.Context, r *pb.AbandonOrchestrationTaskRequest) (*pb.AbandonOrchestrationTaskResponse, error) {
	if err := s.abandon(ctx, r.CompletionToken); err != nil {
		return nil, err
	}
	return &pb.AbandonOrchestrationTaskResponse{}, nil
}

// AbandonTaskActivityWorkItem gives an activity back, as AbandonTaskOrchestratorWorkItem.
func (s *Service) AbandonTaskActivityWorkItem(ctx context.Context, r *pb.AbandonActivityTaskRequest) (*pb.AbandonActivityTaskResponse, error) {
	if err := s.abandon(ctx, r.CompletionToken); err != nil {
		return nil, err
	}
	return &pb.AbandonActivityTaskResponse{}, nil
}

// abandon gives back the item of token (which an abandon must name: there is no fallback).
func (s *Service) abandon(ctx context.Context, token string) error {
	if token == "" {
		return invalid("completionToken is required: give the token of the work item to abandon")
	}
	return s.complete(ctx, token, dispatchKey{}, completion{abandoned: true})
}
