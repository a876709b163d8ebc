package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

// EntityRunner runs the operations of entity batches: an App's Go entities, or a gRPC worker's.
// The engine does the rest: it claims entities with their messages, keeps their locks, backlogs
// and duplicates (internal/entity), and commits each batch in one transaction.
type EntityRunner interface {
	// EntityNames lists the entity names the runner runs; the engine claims only those. It is
	// read at Start (no names, no entity dispatcher) and at every claim.
	EntityNames() store.Names
	// RunEntityBatch runs the batch's operations in order, each on the state the previous one
	// left, rolling back an operation that fails (its state change and its actions) and going
	// on with the next. done and errors as Remote.Orchestrate: done is told how the commit went;
	// ErrGivenBack when a worker gave the batch back.
	RunEntityBatch(ctx context.Context, b entity.Batch) (res entity.Result, done func(error), err error)
}

// entityLoop is the dispatcher of entity batches. It has slots of its own, so a burst of entity
// traffic never takes an orchestration's.
func (e *Engine) entityLoop() {
	e.dispatch(store.EntityWorkKind, e.entSlots, e.entPoke, nil, func(ctx context.Context, max int) (int, error) {
		work, err := e.st.ClaimEntities(ctx, e.opts.Owner, e.opts.Entities.EntityNames(), max, e.opts.LeaseDuration)
		if err != nil {
			return 0, err
		}
		for _, w := range work {
			e.entSlots <- struct{}{}
			e.episodes.Add(1)
			e.held.add(w.Claim())
			go func() {
				defer func() {
					e.held.remove(w.Claim())
					<-e.entSlots
					e.episodes.Done()
					nudge(e.entPoke)
				}()
				e.runEntityBatch(w)
			}()
		}
		return len(work), nil
	}, true)
}

// runEntityBatch runs one batch of an entity and commits it. What it gives up on runs again when
// the lease expires, from the state of the last commit: nothing of a batch is applied unless all
// of it is.
func (e *Engine) runEntityBatch(w store.OrchestrationWork) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration)
	defer cancel()
	attrs := []any{"entity", w.Instance.ID}
	ep, next, done, ops, err := e.entityBatch(ctx, w)
	if done == nil {
		done = func(error) {}
	}
	if err != nil {
		done(err)
		if errors.Is(err, ErrGivenBack) {
			e.log.Info("entity batch given back by its worker; it runs again", append(attrs, "reason", err)...)
		} else {
			e.log.Error("entity batch abandoned; it runs again when its lease expires", append(attrs, "err", err)...)
		}
		return
	}
	err = e.retry("committing entity batch", attrs, func(ctx context.Context) error {
		return e.st.CommitEpisode(ctx, ep)
	})
	done(err)
	if err == nil {
		next.historyLen = w.Instance.HistoryLen + len(ep.History)
		if ep.ResetHistory {
			next.historyLen = len(ep.History)
		}
		next.updatedAt = ep.Instance.UpdatedAt
		e.entities.put(w.Instance.ID, next)
		if ops.ok+ops.failed > 0 {
			name, _, _ := store.ParseEntityInstanceID(w.Instance.ID)
			e.opts.Metrics.EntityBatch(name, ops.ok, ops.failed)
		}
	} else {
		e.entities.drop(w.Instance.ID)
	}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLeaseLost):
		e.opts.Metrics.LeaseLost(metrics.KindEntity)
		e.log.Warn("entity batch discarded: lease lost, or applied by an attempt whose reply was lost", attrs...)
	case errors.Is(err, store.ErrClosed):
	default:
		e.log.Error("entity batch not committed, given up: it runs again when its lease expires", append(attrs, "err", err)...)
	}
}

// entityLimits returns the bounds of a batch.
func (e *Engine) entityLimits() entity.Limits {
	return entity.Limits{Operations: e.opts.MaxEntityBatch, Messages: 5 * e.opts.MaxEntityBatch}
}

// entityBatch plans a batch, runs its operations and returns its commit, with the scheduler
// state it leaves (for the cache, once committed).
func (e *Engine) entityBatch(ctx context.Context, w store.OrchestrationWork) (store.Episode, cachedEntity, func(error), batchOps, error) {
	// Microseconds: the precision of every store's times, so that the cache recognises the
	// update time it committed when it reads it back.
	now := e.now().Truncate(time.Microsecond)
	inst := w.Instance
	state, ok := e.entities.get(inst)
	if !ok {
		chunks, err := e.st.History(ctx, inst.ID)
		if err != nil {
			return store.Episode{}, cachedEntity{}, nil, batchOps{}, fmt.Errorf("load entity scheduler state: %w", err)
		}
		if state, err = entity.Decode(chunks); err != nil {
			return store.Episode{}, cachedEntity{}, nil, batchOps{}, err
		}
		inst.HistoryLen = len(chunks)
	}
	in := make([]entity.Inbound, 0, len(w.Messages))
	var dropped []int64
	for _, m := range w.Messages {
		ev, err := history.DecodeEvent(m.Data)
		if err != nil {
			// A message no one can read would block the entity for ever: taken in and logged.
			e.log.Error("entity message cannot be decoded; dropped", "entity", inst.ID, "messageId", m.ID, "err", err)
			dropped = append(dropped, m.ID)
			continue
		}
		in = append(in, entity.Inbound{ID: m.ID, Event: ev})
	}
	lim := e.entityLimits()
	plan := entity.NewPlan(state, in, lim, now)
	res := entity.Result{State: inst.Output}
	var done func(error)
	if len(plan.Requests) > 0 {
		name, key, _ := store.ParseEntityInstanceID(inst.ID)
		b := entity.Batch{InstanceID: inst.ID, Name: name, Key: key, ExecutionID: inst.ExecutionID,
			State: inst.Output, Requests: plan.Requests, Claim: w.Claim()}
		var err error
		res, done, err = e.opts.Entities.RunEntityBatch(ctx, b)
		if err != nil {
			return store.Episode{}, cachedEntity{}, done, batchOps{}, err
		}
		switch n := len(res.Results); {
		case n == 0:
			return store.Episode{}, cachedEntity{}, done, batchOps{}, fmt.Errorf("%w: the batch came back without results", ErrGivenBack)
		case n > len(plan.Requests):
			return store.Episode{}, cachedEntity{}, done, batchOps{}, fmt.Errorf("entity batch of %d operations came back with %d results", len(plan.Requests), n)
		case n < len(plan.Requests):
			// The same plan, cut after the operations that ran: the rest stays queued.
			lim.Operations = n
			plan = entity.NewPlan(state, in, lim, now)
		}
	}
	ep, err := e.entityCommit(w, inst.HistoryLen, &plan, res, now)
	if err != nil {
		return store.Episode{}, cachedEntity{}, done, batchOps{}, err
	}
	ep.Consumed = append(ep.Consumed, dropped...)
	var ops batchOps
	for _, r := range res.Results {
		if r.Failure != nil {
			ops.failed++
		} else {
			ops.ok++
		}
	}
	return ep, cachedEntity{state: plan.State}, done, ops, nil
}

// batchOps counts the operations of a batch by outcome, for the metrics.
type batchOps struct{ ok, failed int }

// entityCommit builds the commit of a batch: the messages taken in, the new state and scheduler
// state, the replies, the lock hand-offs and the operations' signals and starts.
func (e *Engine) entityCommit(w store.OrchestrationWork, chunks int, plan *entity.Plan, res entity.Result, now time.Time) (store.Episode, error) {
	inst := w.Instance
	inst.Output = res.State
	if len(inst.Output) == 0 || string(inst.Output) == "null" {
		inst.Output = nil
	}
	inst.UpdatedAt = now
	s := plan.State
	ep := store.Episode{Lease: w.Lease, Consumed: plan.Consumed}
	for i, r := range plan.Requests {
		out := res.Results[i]
		op := entity.Op{Time: now, Name: r.Operation, RequestID: r.RequestID, Failed: out.Failure != nil}
		if !out.Start.IsZero() {
			op.Time = out.Start.UTC()
		}
		if r.Caller != nil {
			op.Caller = r.Caller.InstanceID
			reply := history.New(history.EntityOperationCompleted, now)
			reply.RequestID, reply.Result = r.RequestID, out.Output
			if out.Failure != nil {
				reply.Type, reply.Result, reply.Failure = history.EntityOperationFailed, nil, out.Failure
			}
			m, err := control.Message(r.Caller.InstanceID, r.Caller.ExecutionID, reply)
			if err != nil {
				return store.Episode{}, err
			}
			ep.Messages = append(ep.Messages, m)
		}
		s.Ops = append(s.Ops, op)
	}
	if len(s.Ops) > entity.OpsLimit {
		s.Ops = append([]entity.Op(nil), s.Ops[len(s.Ops)-entity.OpsLimit:]...)
	}
	for _, m := range plan.Messages {
		sm, err := control.Message(m.To, m.ToExecution, m.Event)
		if err != nil {
			return store.Episode{}, err
		}
		if m.ToEntity {
			ep.EntityMessages = append(ep.EntityMessages, sm)
		} else {
			ep.Messages = append(ep.Messages, sm)
		}
	}
	for _, a := range res.Actions {
		switch {
		case a.Signal != nil:
			m, err := e.entitySignal(inst.ID, *a.Signal, now)
			if err != nil {
				e.log.Warn("entity operation's signal dropped", "entity", inst.ID, "to", a.Signal.To, "err", err)
				continue
			}
			ep.EntityMessages = append(ep.EntityMessages, m)
		case a.Start != nil:
			st, err := entityStart(*a.Start, now)
			if err != nil {
				e.log.Warn("entity operation's orchestration start dropped", "entity", inst.ID, "orchestrator", a.Start.Name, "err", err)
				continue
			}
			ep.Starts = append(ep.Starts, st)
		}
	}
	if plan.Continue {
		m, err := control.Message(inst.ID, "", history.Event{ID: -1, Type: history.GenericEvent, Name: entity.ContinueName, Time: now})
		if err != nil {
			return store.Episode{}, err
		}
		ep.EntityMessages = append(ep.EntityMessages, m)
	}
	plan.State = s
	chunk, reset, err := plan.EncodeChange(chunks)
	if err != nil {
		return store.Episode{}, err
	}
	inst.CustomStatus = entity.EncodeSummary(s.Summary())
	ep.Instance = inst
	ep.ResetHistory = reset
	ep.History = [][]byte{chunk}
	return ep, nil
}

// entitySignal is the message of a signal sent by entity from.
func (e *Engine) entitySignal(from string, a entity.SignalAction, now time.Time) (store.Message, error) {
	to, err := control.CheckEntityID(a.To)
	if err != nil {
		return store.Message{}, err
	}
	ev := history.New(history.EntityOperationSignaled, now)
	ev.RequestID, ev.Name, ev.Input = control.NewGUID(), a.Operation, a.Input
	ev.Parent = &history.Parent{InstanceID: from}
	if a.At.After(now) {
		ev.FireAt = a.At.UTC()
	}
	m, err := control.Message(to, "", ev)
	if err != nil {
		return store.Message{}, err
	}
	m.VisibleAt = ev.FireAt
	return m, nil
}

// entityStart is the start of an orchestration by an entity: nothing happens when an active
// instance has the ID already (no OnConflict message).
func entityStart(a entity.StartAction, now time.Time) (store.Start, error) {
	id := a.InstanceID
	if id == "" {
		id = control.NewID()
	} else if err := control.ValidateInstanceID(id); err != nil {
		return store.Start{}, err
	}
	if err := control.CheckText("orchestrator name", a.Name, control.MaxNameBytes); err != nil {
		return store.Start{}, err
	}
	if a.Name == "" {
		return store.Start{}, fmt.Errorf("%w: the orchestrator name is empty", store.ErrInvalidArgument)
	}
	start := control.StartEvent(id, control.NewID(), a.Name, a.Input, nil, now)
	start.Version = a.Version
	inst, m, err := control.NewInstance(start)
	if err != nil {
		return store.Start{}, err
	}
	if a.At.After(now) {
		m.VisibleAt = a.At.UTC()
	}
	return store.Start{Instance: inst, Message: m}, nil
}

// cachedEntity is an entity's scheduler state as this engine last committed it, valid while the
// store's row still has the history length and update time of that commit.
type cachedEntity struct {
	historyLen int
	updatedAt  time.Time
	state      entity.State
}

// entityCache keeps the scheduler state of the entities this engine ran lately, so that a batch
// neither reads nor decodes the history its engine wrote (a long backlog, say).
type entityCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cachedEntity
}

// get returns the cached state of the claimed entity, if the row is still the one it left.
func (c *entityCache) get(inst store.Instance) (entity.State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x, ok := c.m[inst.ID]
	if !ok || x.historyLen != inst.HistoryLen || !x.updatedAt.Equal(inst.UpdatedAt) {
		return entity.State{}, false
	}
	return x.state, true
}

func (c *entityCache) put(id string, x cachedEntity) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedEntity{}
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		for k := range c.m { // any one: the cache only saves reads
			delete(c.m, k)
			break
		}
	}
	c.m[id] = x
}

func (c *entityCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
