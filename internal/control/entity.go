package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// The entity operations: signal, get, query and clean. Operations on entities (their batches)
// run in the engine (internal/entity plans them); what a client can do to an entity is here, for
// every front end.

// ErrEntityNotFound means the entity does not exist: it was never signalled, or it has no state.
// It wraps ErrInstanceNotFound, so front ends that answer "not found" for instances answer the
// same for entities.
var ErrEntityNotFound = fmt.Errorf("entity %w", store.ErrNotFound)

// DefaultEntityIdle is how long an entity without state, lock or backlog stays before
// CleanEntityStorage removes it: Durable Functions' entity message reorder window, during which a
// late duplicate could still arrive and must still be recognised.
const DefaultEntityIdle = 30 * time.Minute

// EntityInstanceID checks an entity's name and key and returns its instance ID.
func EntityInstanceID(name, key string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: the entity name is empty", ErrInvalidArgument)
	}
	if strings.Contains(name, "@") {
		return "", fmt.Errorf("%w: entity name %q contains '@', which separates the name from the key in the entity's instance ID", ErrInvalidArgument, name)
	}
	if err := CheckText("entity name", name, MaxNameBytes); err != nil {
		return "", err
	}
	if err := CheckText("entity key", key, 0); err != nil {
		return "", err
	}
	id := store.EntityInstanceID(name, key)
	if err := CheckID(id); err != nil {
		return "", fmt.Errorf("entity %q: %w", id, err)
	}
	return id, nil
}

// CheckEntityID checks an entity's instance ID ("@name@key"), as a Durable Task SDK sends it.
// The name is lower-cased as Durable Functions does; the key keeps its case. It returns the ID
// as stored.
func CheckEntityID(id string) (string, error) {
	name, key, ok := store.ParseEntityInstanceID(id)
	if !ok {
		return "", fmt.Errorf("%w: %q is not an entity's instance ID: want @name@key", ErrInvalidArgument, id)
	}
	return EntityInstanceID(name, key)
}

// SignalRequest is what SignalEntity sends.
type SignalRequest struct {
	EntityID  string          // the entity's instance ID (EntityInstanceID, CheckEntityID)
	Operation string          // the operation's name
	Input     json.RawMessage // nil for none; checked to be JSON
	RequestID string          // "" for a new one; a client that retries passes the same
	At        time.Time       // zero to deliver at once; else not before then
	Trace     *history.TraceContext
}

// SignalEntity queues an operation for an entity, creating the entity if it does not exist.
func (p *Plane) SignalEntity(ctx context.Context, r SignalRequest) error {
	id, err := CheckEntityID(r.EntityID)
	if err != nil {
		return fmt.Errorf("signal entity: %w", err)
	}
	if name, _, _ := store.ParseEntityInstanceID(id); p.opts.HasEntity != nil && !p.opts.HasEntity(name) {
		return fmt.Errorf("signal entity %q: %w: this app has no entity named %q; register it with App.Register", id, ErrNotRegistered, name)
	}
	if err := CheckText("operation name", r.Operation, MaxNameBytes); err != nil {
		return fmt.Errorf("signal entity %q: %w", id, err)
	}
	if err := CheckText("request ID", r.RequestID, MaxNameBytes); err != nil {
		return fmt.Errorf("signal entity %q: %w", id, err)
	}
	if r.Input != nil {
		if err := CheckPayload("operation input", r.Input); err != nil {
			return fmt.Errorf("signal entity %q: %w", id, err)
		}
		if !json.Valid(r.Input) {
			return fmt.Errorf("signal entity %q: %w: the operation input is not JSON", id, ErrInvalidArgument)
		}
	}
	if err := store.CheckTime("signal time", r.At); err != nil {
		return fmt.Errorf("signal entity %q: %w", id, err)
	}
	now := p.now()
	ev := history.New(history.EntityOperationSignaled, now)
	ev.RequestID, ev.Name, ev.Input, ev.Trace = r.RequestID, r.Operation, r.Input, r.Trace
	if ev.RequestID == "" {
		ev.RequestID = NewGUID()
	}
	if r.At.After(now) {
		ev.FireAt = r.At.UTC()
	}
	m, err := Message(id, "", ev)
	if err != nil {
		return err
	}
	m.VisibleAt = ev.FireAt
	if err := p.st.SendEntityMessages(ctx, []store.Message{m}); err != nil {
		return fmt.Errorf("signal entity %q: %w", id, err)
	}
	return nil
}

// NewGUID returns a new random UUID (version 4) in its usual form: the request IDs of entity
// operations, which .NET workers parse as GUIDs.
func NewGUID() string {
	id := NewID()
	b := []byte(id)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
}

// EntityRecord is an entity as clients see it.
type EntityRecord struct {
	InstanceID   string
	Name, Key    string
	LastModified time.Time
	LockedBy     string // the orchestration holding its lock; "" when free
	Backlog      int    // messages waiting behind the lock
	Exists       bool   // it has state
	State        json.RawMessage
	// Ops are its last operations, oldest first: only from EntityDetail.
	Ops []entity.Op
}

func entityRecord(inst store.Instance, withState bool) EntityRecord {
	name, key, _ := store.ParseEntityInstanceID(inst.ID)
	sum := entity.DecodeSummary(inst.CustomStatus)
	r := EntityRecord{InstanceID: inst.ID, Name: name, Key: key, LastModified: inst.UpdatedAt,
		LockedBy: sum.LockedBy, Backlog: sum.Backlog, Exists: inst.Output != nil}
	if withState {
		r.State = inst.Output
	}
	return r
}

// GetEntity returns an entity; ErrEntityNotFound when no entity has the ID. An entity that is
// known but has no state (it was deleted, or only locked) is returned with Exists false: front
// ends that follow Durable Functions answer "not found" for it.
func (p *Plane) GetEntity(ctx context.Context, id string, withState bool) (EntityRecord, error) {
	inst, err := p.getEntity(ctx, "get entity", id)
	if err != nil {
		return EntityRecord{}, err
	}
	return entityRecord(inst, withState), nil
}

// EntityDetail is GetEntity with the state and the entity's last operations, for people.
func (p *Plane) EntityDetail(ctx context.Context, id string) (EntityRecord, error) {
	inst, err := p.getEntity(ctx, "get entity", id)
	if err != nil {
		return EntityRecord{}, err
	}
	r := entityRecord(inst, true)
	chunks, err := p.st.History(ctx, inst.ID)
	if err != nil {
		return EntityRecord{}, fmt.Errorf("get entity %q: %w", inst.ID, err)
	}
	s, err := entity.Decode(chunks)
	if err != nil {
		return EntityRecord{}, fmt.Errorf("get entity %q: %w", inst.ID, err)
	}
	r.Ops = s.Ops
	return r, nil
}

func (p *Plane) getEntity(ctx context.Context, what, id string) (store.Instance, error) {
	id, err := CheckEntityID(id)
	if err != nil {
		return store.Instance{}, fmt.Errorf("%s: %w", what, err)
	}
	inst, err := p.st.GetInstance(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && inst.Kind != store.KindEntity {
		return store.Instance{}, fmt.Errorf("%s %q: %w in task hub %q", what, id, ErrEntityNotFound, p.opts.Hub)
	}
	if err != nil {
		return store.Instance{}, fmt.Errorf("%s %q: %w", what, id, err)
	}
	return inst, nil
}

// EntityQuery selects entities for QueryEntities. Zero fields do not filter.
type EntityQuery struct {
	// Name selects the entities of one name (case-insensitively); IDPrefix those whose instance
	// ID starts with it ("@counter@a" for the counters whose key starts with "a"). Name wins.
	Name     string
	IDPrefix string
	// LastModifiedFrom (inclusive) and LastModifiedTo (exclusive) bound the last operation time.
	LastModifiedFrom time.Time
	LastModifiedTo   time.Time
	WithState        bool // include the state
	// IncludeTransient also lists entities without state (deleted, or only locked or queued).
	IncludeTransient  bool
	PageSize          int // 0 means 100
	ContinuationToken string
	// MaxBytes, when above 0, also ends a page once its entities hold that many bytes
	// (store.Query.MaxBytes), so that large states cannot make one page unbounded.
	MaxBytes int
}

// QueryEntities returns a page of entities and the next page's token ("" after the last).
func (p *Plane) QueryEntities(ctx context.Context, q EntityQuery) ([]EntityRecord, string, error) {
	prefix := q.IDPrefix
	if q.Name != "" {
		if _, err := EntityInstanceID(q.Name, ""); err != nil {
			return nil, "", fmt.Errorf("query entities: %w", err)
		}
		prefix = "@" + strings.ToLower(q.Name) + "@"
	}
	if q.PageSize < 0 {
		return nil, "", fmt.Errorf("query entities: %w: page size %d is negative", ErrInvalidArgument, q.PageSize)
	}
	sq := store.Query{Kind: store.KindEntity, IDPrefix: prefix, UpdatedFrom: q.LastModifiedFrom, UpdatedTo: q.LastModifiedTo,
		SkipTransient: !q.IncludeTransient, PageSize: q.PageSize,
		ContinuationToken: q.ContinuationToken, MaxBytes: q.MaxBytes}
	page, next, err := p.list(ctx, "query entities", sq)
	if err != nil {
		return nil, "", err
	}
	out := make([]EntityRecord, 0, len(page))
	for _, inst := range page {
		out = append(out, entityRecord(inst, q.WithState))
	}
	return out, next, nil
}

// CleanRequest says what CleanEntityStorage cleans.
type CleanRequest struct {
	// RemoveEmpty removes the entities that have no state, no lock and no backlog and have been
	// idle for IdleFor (0: DefaultEntityIdle; < 0: at once).
	RemoveEmpty bool
	IdleFor     time.Duration
	// ReleaseOrphanedLocks releases the locks whose holder is no longer running: finished,
	// purged, or replaced by a new execution.
	ReleaseOrphanedLocks bool
	// ContinuationToken continues a previous call; each call looks at one page of entities.
	ContinuationToken string
	PageSize          int // 0 means 100
}

// CleanResult is what CleanEntityStorage did.
type CleanResult struct {
	Removed           int
	Released          int
	ContinuationToken string // "" when every entity has been looked at
}

// CleanEntityStorage looks at one page of entities and cleans what r asks; call it again with
// the returned token until it is "".
func (p *Plane) CleanEntityStorage(ctx context.Context, r CleanRequest) (CleanResult, error) {
	idle := r.IdleFor
	if idle == 0 {
		idle = DefaultEntityIdle
	}
	// With payloads: the summary is the row's CustomStatus, which WithoutPayloads leaves out.
	page, next, err := p.list(ctx, "clean entity storage", store.Query{Kind: store.KindEntity, PageSize: r.PageSize,
		ContinuationToken: r.ContinuationToken})
	if err != nil {
		return CleanResult{}, err
	}
	res := CleanResult{ContinuationToken: next}
	now := p.now()
	for _, inst := range page {
		sum := entity.DecodeSummary(inst.CustomStatus)
		if r.ReleaseOrphanedLocks && sum.LockedBy != "" {
			released, err := p.releaseOrphan(ctx, inst)
			if err != nil {
				return res, fmt.Errorf("clean entity storage: %w", err)
			}
			if released {
				res.Released++
			}
			continue
		}
		if r.RemoveEmpty && sum == (entity.Summary{}) && inst.Output == nil && now.Sub(inst.UpdatedAt) >= idle {
			removed, err := p.st.DeleteEntity(ctx, inst.ID, inst.UpdatedAt)
			if err != nil {
				return res, fmt.Errorf("clean entity storage: remove %q: %w", inst.ID, err)
			}
			if removed {
				res.Removed++
			}
		}
	}
	return res, nil
}

// releaseOrphan sends the entity the unlock of its lock when the holder no longer runs the
// execution that took it.
func (p *Plane) releaseOrphan(ctx context.Context, inst store.Instance) (bool, error) {
	chunks, err := p.st.History(ctx, inst.ID)
	if err != nil {
		return false, err
	}
	s, err := entity.Decode(chunks)
	if err != nil || s.Lock == nil {
		return false, err
	}
	holder, err := p.st.GetInstance(ctx, s.Lock.Holder)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, err
	case holder.Kind == store.KindOrchestration && holder.Status.Active() && holder.ExecutionID == s.Lock.Execution:
		return false, nil // still running the execution that holds it
	}
	ev := history.New(history.EntityUnlockSent, p.now())
	ev.RequestID = s.Lock.Section
	ev.Parent = &history.Parent{InstanceID: s.Lock.Holder, ExecutionID: s.Lock.Execution}
	m, err := Message(inst.ID, "", ev)
	if err != nil {
		return false, err
	}
	if err := p.st.SendEntityMessages(ctx, []store.Message{m}); err != nil {
		return false, err
	}
	return true, nil
}
