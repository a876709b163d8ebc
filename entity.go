package reprise

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/store"
)

// Entity is a typed durable entity definition: a small keyed actor with durable state of type S
// (a counter, a cart, a device twin, a lock). Each entity ID (a name and a key) is one entity;
// its operations run one at a time, in the order each sender sent them, and its state is saved
// after each batch of operations. An operation that returns an error (or panics) is rolled back:
// its change of state and the signals and starts it made are dropped, and the next operation
// goes on from the state before it.
//
// Entities are reached by signals (one-way, from a client, an orchestration or an entity; see
// Client.SignalEntity and OrchestrationContext.SignalEntity) and by calls from orchestrations
// (CallEntity), which wait for the operation's result. An orchestration can lock entities in a
// critical section (OrchestrationContext.LockEntities).
type Entity[S any] struct {
	name string
	fn   func(*EntityContext[S]) (any, error)
}

// NewEntity defines an entity. fn runs each operation: it reads ctx.Operation() and
// ctx.GetInput, reads and changes the state, and returns the operation's result (JSON-encoded
// for the caller; nil for none) or an error. The operation "delete" is implicit: it removes the
// state without calling fn, after which the entity no longer exists.
func NewEntity[S any](name string, fn func(ctx *EntityContext[S]) (any, error)) *Entity[S] {
	return &Entity[S]{name: name, fn: fn}
}

// Name returns the entity's name.
func (e *Entity[S]) Name() string { return e.name }

// ID returns the ID of the entity of this definition with the key.
func (e *Entity[S]) ID(key string) EntityID { return EntityID{Name: e.name, Key: key} }

func (e *Entity[S]) register(r *registry) {
	r.addEntity(e.name, func(ctx context.Context, b entity.Batch, state json.RawMessage, req entity.Request, log *slog.Logger) (opResult, error) {
		ec := &EntityContext[S]{ctx: ctx, id: EntityID{Name: b.Name, Key: b.Key}, req: req, log: log, app: r.app}
		if state != nil {
			if err := json.Unmarshal(state, &ec.state); err != nil {
				return opResult{}, &Error{Type: "InvalidState", NonRetriable: true,
					Message: fmt.Sprintf("entity %q: cannot decode its state into %T: %v", b.InstanceID, ec.state, err)}
			}
			ec.has = true
		}
		out, err := e.fn(ec)
		if err != nil {
			return opResult{}, err
		}
		var res opResult
		res.actions = ec.actions
		if out != nil {
			if res.output, err = json.Marshal(out); err != nil {
				return opResult{}, &Error{Type: "InvalidOutput", NonRetriable: true,
					Message: fmt.Sprintf("entity %q: the result of %q is not JSON-serialisable: %v", b.InstanceID, req.Operation, err)}
			}
		}
		if ec.has {
			if res.state, err = json.Marshal(ec.state); err != nil {
				return opResult{}, &Error{Type: "InvalidState", NonRetriable: true,
					Message: fmt.Sprintf("entity %q: its state is not JSON-serialisable: %v", b.InstanceID, err)}
			}
		}
		return res, nil
	})
}

// EntityContext is an operation's view of its entity: its ID, the operation, the state, and the
// signals and orchestration starts the operation makes (sent only if it succeeds).
type EntityContext[S any] struct {
	ctx     context.Context
	id      EntityID
	req     entity.Request
	state   S
	has     bool
	actions []entity.Action
	log     *slog.Logger
	app     *App // for the default version of the orchestrations it starts
}

// Context returns the context of the operation, cancelled when the app shuts down.
func (c *EntityContext[S]) Context() context.Context { return c.ctx }

// ID returns the entity's ID.
func (c *EntityContext[S]) ID() EntityID { return c.id }

// Operation returns the name of the operation to run.
func (c *EntityContext[S]) Operation() string { return c.req.Operation }

// HasInput reports whether the operation has an input.
func (c *EntityContext[S]) HasInput() bool { return c.req.Input != nil }

// GetInput decodes the operation's JSON input into v; without an input it leaves v alone.
func (c *EntityContext[S]) GetInput(v any) error {
	if c.req.Input == nil {
		return nil
	}
	if err := json.Unmarshal(c.req.Input, v); err != nil {
		return fmt.Errorf("entity %s, operation %q: cannot decode the input into %T: %w", c.id, c.req.Operation, v, err)
	}
	return nil
}

// HasState reports whether the entity has state: whether it exists.
func (c *EntityContext[S]) HasState() bool { return c.has }

// State returns the entity's state; the zero S when it has none.
func (c *EntityContext[S]) State() S { return c.state }

// SetState sets the entity's state (which makes the entity exist).
func (c *EntityContext[S]) SetState(s S) { c.state, c.has = s, true }

// DeleteState removes the entity's state: after the batch, the entity no longer exists.
func (c *EntityContext[S]) DeleteState() {
	var zero S
	c.state, c.has = zero, false
}

// Logger returns the app's logger, with the entity and the operation.
func (c *EntityContext[S]) Logger() *slog.Logger {
	return c.log.With("entity", c.id.String(), "operation", c.req.Operation)
}

// SignalEntity signals an operation to an entity (this one too), sent when the operation
// succeeds. input is JSON-encoded; nil for none.
func (c *EntityContext[S]) SignalEntity(id EntityID, op string, input any, opts ...SignalOption) error {
	to, err := control.EntityInstanceID(id.Name, id.Key)
	if err != nil {
		return fmt.Errorf("signal entity: %w", err)
	}
	raw, err := inputJSON(input)
	if err != nil {
		return fmt.Errorf("signal entity %s: %w", to, err)
	}
	cfg := signalConfigOf(opts)
	c.actions = append(c.actions, entity.Action{Signal: &entity.SignalAction{To: to, Operation: op, Input: raw, At: cfg.at}})
	return nil
}

// StartNewOrchestration starts an orchestration when the operation succeeds, and returns its
// instance ID (WithInstanceID chooses it; an active instance with that ID is left alone).
// WithStartTime and WithVersion apply (without WithVersion, the App's default version, as for the
// Client); other start options are ignored.
func (c *EntityContext[S]) StartNewOrchestration(name string, input any, opts ...StartOption) (string, error) {
	var cfg startConfig
	for _, o := range opts {
		o.applyStart(&cfg)
	}
	id := cfg.instanceID
	if id == "" {
		id = control.NewID()
	} else if err := control.ValidateInstanceID(id); err != nil {
		return "", fmt.Errorf("start orchestration %q from entity %s: %w", name, c.id, err)
	}
	raw, err := inputJSON(input)
	if err != nil {
		return "", fmt.Errorf("start orchestration %q from entity %s: %w", name, c.id, err)
	}
	if raw == nil {
		raw = json.RawMessage("null")
	}
	if cfg.version == "" && c.app != nil {
		cfg.version = c.app.defaultVersion()
	}
	c.actions = append(c.actions, entity.Action{Start: &entity.StartAction{InstanceID: id, Name: name,
		Version: cfg.version, Input: raw, At: cfg.startAt}})
	return id, nil
}

// inputJSON encodes an input; nil stays nil (no input), a json.RawMessage is checked.
func inputJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: the input is not JSON", ErrInvalidArgument)
		}
		return raw, nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("the input is not JSON-serialisable: %w", err)
	}
	return data, nil
}

// entityFunc runs one operation of a Go entity on state (nil: none) and returns its outcome.
type entityFunc func(ctx context.Context, b entity.Batch, state json.RawMessage, req entity.Request, log *slog.Logger) (opResult, error)

type opResult struct {
	output  json.RawMessage
	state   json.RawMessage // nil: no state
	actions []entity.Action
}

func (r *registry) addEntity(name string, fn entityFunc) {
	checkName("entity", name)
	if strings.Contains(name, "@") {
		panic(fmt.Sprintf("reprise: entity name %q contains '@', which separates the name from the key in entity IDs", name))
	}
	key := strings.ToLower(name)
	if r.entities == nil {
		r.entities = map[string]entityFunc{}
	}
	if _, dup := r.entities[key]; dup {
		panic(fmt.Sprintf("reprise: entity %q registered twice", name))
	}
	r.entities[key] = fn
	r.entityNames = append(r.entityNames, name)
}

// EntityNames implements engine.EntityRunner.
func (r *registry) EntityNames() store.Names { return slices.Clone(r.entityNames) }

// RunEntityBatch implements engine.EntityRunner: each operation on the state the previous one
// left, a failed one rolled back.
func (r *registry) RunEntityBatch(ctx context.Context, b entity.Batch) (entity.Result, func(error), error) {
	fn := r.entities[strings.ToLower(b.Name)]
	res := entity.Result{State: b.State, Results: make([]entity.OpResult, 0, len(b.Requests))}
	for _, req := range b.Requests {
		start := r.app.now()
		var out entity.OpResult
		switch {
		case req.IsDelete():
			res.State = nil
		case fn == nil:
			out.Failure = &history.Failure{Type: "EntityTaskNotFound", NonRetriable: true,
				Message: fmt.Sprintf("no entity named %q is registered with this app", b.Name)}
		default:
			o, err := runOperation(ctx, fn, b, res.State, req, r.app.logger)
			if err != nil {
				out.Failure = replay.FailureFromError(internalError(err))
			} else {
				res.State, out.Output = o.state, o.output
				res.Actions = append(res.Actions, o.actions...)
			}
		}
		out.Start, out.End = start, r.app.now()
		res.Results = append(res.Results, out)
	}
	return res, nil, nil
}

// runOperation runs one operation, turning a panic into its failure.
func runOperation(ctx context.Context, fn entityFunc, b entity.Batch, state json.RawMessage, req entity.Request, log *slog.Logger) (res opResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &Error{Type: "Panic", Message: fmt.Sprintf("entity %q, operation %q panicked: %v\n%s", b.InstanceID, req.Operation, p, debug.Stack())}
		}
	}()
	return fn(ctx, b, state, req, log)
}

// hasEntity reports whether the app runs the entity name: any name when it registered no
// entities (their workers are elsewhere, as for a gRPC sidecar).
func (a *App) hasEntity(name string) bool {
	if len(a.reg.entities) == 0 {
		return true
	}
	_, ok := a.reg.entities[strings.ToLower(name)]
	return ok
}

// EntityMetadata is an entity as a client sees it.
type EntityMetadata struct {
	ID           EntityID
	LastModified time.Time // the time of its last batch
	// LockedBy is the orchestration instance holding the entity in a critical section; "" when
	// it is free. BacklogSize counts the operations waiting for the lock.
	LockedBy    string
	BacklogSize int
	// State is the entity's state as JSON: nil when the entity has none (or it was not asked
	// for).
	State json.RawMessage
}

// GetState decodes the entity's state into v.
func (m *EntityMetadata) GetState(v any) error { return decode(m.State, v) }

func entityMetadata(r control.EntityRecord) *EntityMetadata {
	return &EntityMetadata{ID: EntityID{Name: r.Name, Key: r.Key}, LastModified: r.LastModified,
		LockedBy: r.LockedBy, BacklogSize: r.Backlog, State: r.State}
}

// SignalEntity signals an operation to an entity: one-way, delivered at least once and, from
// one client, in order. The entity is created if it does not exist. input is JSON-encoded; nil
// for none. WithSignalTime delays delivery.
func (c *Client) SignalEntity(ctx context.Context, id EntityID, op string, input any, opts ...SignalOption) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	eid, err := control.EntityInstanceID(id.Name, id.Key)
	if err != nil {
		return fmt.Errorf("signal entity: %w", err)
	}
	raw, err := inputJSON(input)
	if err != nil {
		return fmt.Errorf("signal entity %s: %w", eid, err)
	}
	cfg := signalConfigOf(opts)
	ctx, span := c.app.tracer.StartSignal(ctx, op, eid)
	err = p.SignalEntity(ctx, control.SignalRequest{EntityID: eid, Operation: op, Input: raw, At: cfg.at, Trace: tracing.FromContext(ctx)})
	tracing.End(span, err)
	return err
}

// GetEntity returns an entity with its state, or an error wrapping ErrEntityNotFound when it does
// not exist (it has no state).
func (c *Client) GetEntity(ctx context.Context, id EntityID) (*EntityMetadata, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	eid, err := control.EntityInstanceID(id.Name, id.Key)
	if err != nil {
		return nil, fmt.Errorf("get entity: %w", err)
	}
	r, err := p.GetEntity(ctx, eid, true)
	if err != nil {
		return nil, err
	}
	if !r.Exists {
		return nil, fmt.Errorf("get entity %q: %w (it has no state)", eid, ErrEntityNotFound)
	}
	return entityMetadata(r), nil
}

// EntityQuery selects entities for QueryEntities. Zero fields do not filter.
type EntityQuery struct {
	Name string // the entities of one name
	// KeyPrefix, with Name, selects the keys that start with it.
	KeyPrefix string
	// LastModifiedFrom (inclusive) and LastModifiedTo (exclusive) bound the last batch's time.
	LastModifiedFrom time.Time
	LastModifiedTo   time.Time
	FetchState       bool // include the state
	// IncludeTransient also lists entities without state: deleted, or only locked or queued.
	IncludeTransient  bool
	PageSize          int // 0 means 100
	ContinuationToken string
}

// QueryEntities returns a page of entities and the token of the next ("" after the last).
func (c *Client) QueryEntities(ctx context.Context, q EntityQuery) ([]*EntityMetadata, string, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, "", err
	}
	cq := control.EntityQuery{Name: q.Name, LastModifiedFrom: q.LastModifiedFrom, LastModifiedTo: q.LastModifiedTo,
		WithState: q.FetchState, IncludeTransient: q.IncludeTransient, PageSize: q.PageSize, ContinuationToken: q.ContinuationToken}
	if q.KeyPrefix != "" {
		if q.Name == "" {
			return nil, "", fmt.Errorf("query entities: %w: a key prefix needs the entity name", ErrInvalidArgument)
		}
		prefix, err := control.EntityInstanceID(q.Name, q.KeyPrefix)
		if err != nil {
			return nil, "", fmt.Errorf("query entities: %w", err)
		}
		cq.Name, cq.IDPrefix = "", prefix
	}
	page, next, err := p.QueryEntities(ctx, cq)
	if err != nil {
		return nil, "", err
	}
	out := make([]*EntityMetadata, len(page))
	for i, r := range page {
		out[i] = entityMetadata(r)
	}
	return out, next, nil
}

// CleanEntityStorageOptions say what CleanEntityStorage cleans.
type CleanEntityStorageOptions struct {
	// RemoveEmptyEntities removes the entities without state, lock or backlog that have been idle
	// for EmptyFor (0: 30 minutes, the window in which a late duplicate message is still
	// recognised; < 0: at once).
	RemoveEmptyEntities bool
	EmptyFor            time.Duration
	// ReleaseOrphanedLocks releases the locks whose orchestration no longer runs.
	ReleaseOrphanedLocks bool
}

// CleanEntityStorageResult counts what CleanEntityStorage did.
type CleanEntityStorageResult struct {
	EmptyEntitiesRemoved  int
	OrphanedLocksReleased int
}

// CleanEntityStorage removes empty entities and releases orphaned locks, over all entities.
func (c *Client) CleanEntityStorage(ctx context.Context, o CleanEntityStorageOptions) (CleanEntityStorageResult, error) {
	p, err := c.app.plane()
	if err != nil {
		return CleanEntityStorageResult{}, err
	}
	var total CleanEntityStorageResult
	token := ""
	for {
		r, err := p.CleanEntityStorage(ctx, control.CleanRequest{RemoveEmpty: o.RemoveEmptyEntities, IdleFor: o.EmptyFor,
			ReleaseOrphanedLocks: o.ReleaseOrphanedLocks, ContinuationToken: token})
		total.EmptyEntitiesRemoved += r.Removed
		total.OrphanedLocksReleased += r.Released
		if err != nil {
			return total, err
		}
		if r.ContinuationToken == "" {
			return total, nil
		}
		token = r.ContinuationToken
	}
}
