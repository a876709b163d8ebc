package reprise

import (
	"context"
	"encoding/json"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/store"
)

// RuntimeStatus is the runtime status of an instance: Pending, Running, Completed,
// ContinuedAsNew, Failed, Canceled, Terminated or Suspended.
type RuntimeStatus = store.Status

// Runtime statuses, as in Durable Functions.
const (
	StatusPending        = store.StatusPending
	StatusRunning        = store.StatusRunning
	StatusCompleted      = store.StatusCompleted
	StatusContinuedAsNew = store.StatusContinuedAsNew
	StatusFailed         = store.StatusFailed
	StatusCanceled       = store.StatusCanceled
	StatusTerminated     = store.StatusTerminated
	StatusSuspended      = store.StatusSuspended
)

// ReusePolicy says what starting an instance ID that already exists does.
type ReusePolicy = store.ReusePolicy

// Reuse policies. The default is ReuseIfFinished, as in Durable Functions.
const (
	// ReuseIfFinished replaces a Completed, Failed, Terminated or Canceled instance and refuses
	// (ErrInstanceExists) a Pending, Running or Suspended one.
	ReuseIfFinished = store.ReuseIfFinished
	// ReuseNever refuses any existing instance.
	ReuseNever = store.ReuseNever
	// ReuseAlways replaces the existing instance whatever its status.
	ReuseAlways = store.ReuseAlways
)

// Client starts and manages orchestration instances.
type Client struct{ app *App }

// StartOption configures Client.StartNew and Orchestrator.Start.
type StartOption interface{ applyStart(*startConfig) }

type startConfig struct {
	instanceID string
	startAt    time.Time
	reuse      ReusePolicy
	version    string
}

type startFunc func(*startConfig)

func (f startFunc) applyStart(c *startConfig) { f(c) }

// WithStartTime delays the start of the orchestration until t (the instance stays Pending).
func WithStartTime(t time.Time) StartOption { return startFunc(func(c *startConfig) { c.startAt = t }) }

// WithReusePolicy sets what happens when the instance ID already exists (default ReuseIfFinished).
func WithReusePolicy(p ReusePolicy) StartOption {
	return startFunc(func(c *startConfig) { c.reuse = p })
}

// VersionOption sets an orchestration version: for Start, or for a sub-orchestration or activity
// call.
type VersionOption string

func (o VersionOption) applyStart(c *startConfig) { c.version = string(o) }
func (o VersionOption) applyCall(c *callConfig)   { c.version = string(o) }

// WithVersion stamps a new instance with an orchestration version (at most 2048 bytes of UTF-8
// without NUL), instead of the App's default version (Versioning.DefaultVersion). The instance
// keeps it for its whole life, through continue-as-new, restarts and rewinds; hosts with a
// version match strategy run it only if it matches theirs (see Versioning), and remote workers of
// the Durable Task SDKs read it to pick a compatible orchestrator.
//
// As a CallOption it sets the version of a sub-orchestration, which otherwise inherits its
// parent's, or the version an activity call is scheduled with (ActivityInfo.Version), which
// otherwise is the calling orchestration's.
func WithVersion(v string) VersionOption { return VersionOption(v) }

// ValidateInstanceID checks an instance ID chosen for a new instance against the Durable Functions
// rules, and against what would make its management URLs lead elsewhere ("." and "..").
func ValidateInstanceID(id string) error { return control.ValidateInstanceID(id) }

// plane returns the control plane on the App's store: every operation of the Client is one of
// its methods, as for the management API, the dashboard and the gRPC service.
func (a *App) plane() (*control.Plane, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	return control.New(st, control.Options{Hub: a.cfg.hub, Registered: a.startable, HasEntity: a.hasEntity, Now: a.cfg.now}), nil
}

// startable reports whether the App starts instances of the orchestrator: one it registered. An
// App with orchestrators refuses to start others, so that a typo is caught at once; one with none
// only manages instances that other hosts run (reprise serve, whose orchestrators are its gRPC
// workers'), so it starts any name.
func (a *App) startable(name string) bool {
	if len(a.reg.orchestrators) == 0 {
		return true
	}
	_, ok := a.reg.Orchestrator(name)
	return ok
}

// StartNew starts an instance of the orchestrator with the name and returns its ID: the one given
// with WithInstanceID, or 32 random hex characters.
func (c *Client) StartNew(ctx context.Context, name string, input any, opts ...StartOption) (string, error) {
	p, err := c.app.plane()
	if err != nil {
		return "", err
	}
	var cfg startConfig
	for _, o := range opts {
		o.applyStart(&cfg)
	}
	return c.app.start(ctx, p, control.StartRequest{Name: name, InstanceID: cfg.instanceID, Input: input, StartAt: cfg.startAt, Reuse: cfg.reuse,
		Version: cfg.version})
}

// Instance is the status of an orchestration instance.
type Instance struct {
	ID               string
	Name             string
	Status           RuntimeStatus
	Input            json.RawMessage // nil when not requested
	Output           json.RawMessage // the output; for Failed the failure message, for Terminated the reason
	CustomStatus     json.RawMessage
	Failure          *FailureDetails // set when Failed
	CreatedAt        time.Time
	LastUpdatedAt    time.Time
	ParentInstanceID string
	ExecutionID      string
	Version          string         // the orchestration version it was started with (WithVersion), "" for none
	History          []HistoryEvent // only with WithHistory
}

// HistoryEvent is one event of an instance's history.
type HistoryEvent struct {
	EventID    int             `json:"eventId"` // sequence number of scheduling events, else -1
	Type       string          `json:"eventType"`
	Timestamp  time.Time       `json:"timestamp"`
	Name       string          `json:"name,omitempty"`
	InstanceID string          `json:"instanceId,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Failure    *FailureDetails `json:"failure,omitempty"`
	TaskID     int             `json:"taskScheduledId,omitempty"` // the event a completion completes
	FireAt     time.Time       `json:"fireAt,omitzero"`
	Status     string          `json:"orchestrationStatus,omitempty"` // ExecutionCompleted
}

// GetOption configures GetInstance.
type GetOption func(*getConfig)

type getConfig struct{ history, noPayloads bool }

// WithHistory includes the history of the current execution.
func WithHistory() GetOption { return func(c *getConfig) { c.history = true } }

// WithoutPayloads leaves out input, output and custom status.
func WithoutPayloads() GetOption { return func(c *getConfig) { c.noPayloads = true } }

// GetInstance returns an instance's status, or ErrInstanceNotFound.
func (c *Client) GetInstance(ctx context.Context, id string, opts ...GetOption) (*Instance, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	var cfg getConfig
	for _, o := range opts {
		o(&cfg)
	}
	si, err := p.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	inst := publicInstance(si, !cfg.noPayloads)
	if cfg.history {
		events, err := p.History(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, e := range events {
			inst.History = append(inst.History, publicEvent(e))
		}
	}
	return inst, nil
}

func publicInstance(si store.Instance, payloads bool) *Instance {
	inst := &Instance{
		ID: si.ID, Name: si.Name, Status: si.Status, CreatedAt: si.CreatedAt, LastUpdatedAt: si.UpdatedAt,
		ParentInstanceID: si.ParentID, ExecutionID: si.ExecutionID, Version: si.Version,
	}
	if payloads {
		inst.Input, inst.Output, inst.CustomStatus = si.Input, si.Output, si.CustomStatus
	}
	inst.Failure = failureDetails(history.DecodeFailure(si.Failure))
	return inst
}

func publicEvent(e history.Event) HistoryEvent {
	h := HistoryEvent{
		EventID: int(e.ID), Type: e.Type.String(), Timestamp: e.Time, Name: e.Name, InstanceID: e.InstanceID,
		Input: e.Input, Result: e.Result, Failure: failureDetails(e.Failure), TaskID: int(e.TaskID), FireAt: e.FireAt,
	}
	if e.Type == history.ExecutionCompleted {
		h.Status = store.Status(e.Status).String()
	}
	return h
}

// Query selects instances for ListInstances. Zero fields do not filter; dates outside
// store.MinTime to store.MaxTime, and text that is not UTF-8 or holds NUL, are ErrInvalidArgument.
type Query struct {
	Statuses          []RuntimeStatus
	CreatedFrom       time.Time // inclusive
	CreatedTo         time.Time // inclusive
	IDPrefix          string
	Name              string // the orchestrator's name (case-insensitive, as names are)
	PageSize          int    // default 100
	ContinuationToken string // from the previous page; "" for the first
	WithoutPayloads   bool
	NewestFirst       bool // list newest first instead of oldest first

	// Versions keeps the instances started with one of these versions (WithVersion): whole,
	// case-sensitive matches, no ordering or ranges; "" matches the instances without a version.
	// At most 100 versions.
	Versions []string
}

// store returns q as the store takes it; the control plane checks it.
func (q Query) store() store.Query {
	return store.Query{
		Statuses: q.Statuses, CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo, IDPrefix: q.IDPrefix, Name: q.Name,
		PageSize: q.PageSize, ContinuationToken: q.ContinuationToken, WithoutPayloads: q.WithoutPayloads, NewestFirst: q.NewestFirst,
		Versions: q.Versions,
	}
}

// CountInstances counts the instances matching q's filters by status (paging fields are
// ignored); statuses without instances are absent. It reads every matching instance: on a hub
// of millions, prefer narrow filters.
func (c *Client) CountInstances(ctx context.Context, q Query) (map[RuntimeStatus]int, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	return p.Count(ctx, q.store())
}

// ListInstances returns a page of the instances matching q, oldest first (or newest first), and
// the token of the next page ("" after the last page).
func (c *Client) ListInstances(ctx context.Context, q Query) ([]*Instance, string, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, "", err
	}
	page, next, err := p.List(ctx, q.store())
	if err != nil {
		return nil, "", err
	}
	out := make([]*Instance, len(page))
	for i, si := range page {
		out[i] = publicInstance(si, !q.WithoutPayloads)
	}
	return out, next, nil
}

// RaiseEvent delivers an external event to an instance. Events for a name the orchestrator is
// not waiting for yet are kept until it waits. A finished instance gives ErrInstanceFinished.
func (c *Client) RaiseEvent(ctx context.Context, id, name string, data any) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	ctx, span := c.app.tracer.StartRaise(ctx, name, id)
	err = p.Raise(ctx, id, name, data)
	tracing.End(span, err)
	return err
}

// Terminate stops an instance: it becomes Terminated, with the reason as its output, and so do
// its running sub-orchestrations, recursively. Running activities finish but their results are
// ignored.
func (c *Client) Terminate(ctx context.Context, id, reason string) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	return p.Terminate(ctx, id, reason, true)
}

// Suspend pauses an instance: it becomes Suspended and processes nothing but Resume and
// Terminate; events that arrive meanwhile are kept and processed on Resume.
func (c *Client) Suspend(ctx context.Context, id, reason string) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	return p.Suspend(ctx, id, reason)
}

// Resume continues a suspended instance.
func (c *Client) Resume(ctx context.Context, id, reason string) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	return p.Resume(ctx, id, reason)
}

// Rewind runs a Failed instance again from where it failed: the activities and
// sub-orchestrations whose failures ended it run again, and what succeeded is kept. Deploy fixed
// code first when the failure came from the orchestrator itself (a non-determinism error, say).
func (c *Client) Rewind(ctx context.Context, id, reason string) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	return p.Rewind(ctx, id, reason)
}

// Restart starts the instance's orchestrator again with its original input: under a new ID
// (newInstanceID) or the same one, which must have finished. It returns the ID started.
func (c *Client) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	p, err := c.app.plane()
	if err != nil {
		return "", err
	}
	return p.Restart(ctx, id, newInstanceID)
}

// PurgeInstance deletes a finished instance and its history. It returns ErrInstanceNotFound, or
// ErrInstanceActive for an instance that has not finished (terminate it first).
func (c *Client) PurgeInstance(ctx context.Context, id string) error {
	p, err := c.app.plane()
	if err != nil {
		return err
	}
	return p.Purge(ctx, id)
}

// PurgeFilter selects finished instances for PurgeInstances. A bound outside store.MinTime to
// store.MaxTime is ErrInvalidArgument.
type PurgeFilter struct {
	CreatedFrom time.Time       // inclusive; zero means no lower bound
	CreatedTo   time.Time       // inclusive; zero means no upper bound
	Statuses    []RuntimeStatus // terminal statuses only; empty means all of them
}

// PurgeInstances deletes the finished instances that match f and returns how many.
func (c *Client) PurgeInstances(ctx context.Context, f PurgeFilter) (int, error) {
	p, err := c.app.plane()
	if err != nil {
		return 0, err
	}
	return p.PurgeMatching(ctx, store.PurgeFilter{CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo, Statuses: f.Statuses})
}

// WaitForStart waits until the instance has started (is no longer Pending) and returns its status.
func (c *Client) WaitForStart(ctx context.Context, id string) (*Instance, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	si, err := p.WaitForStart(ctx, id)
	if err != nil {
		return nil, err
	}
	return publicInstance(si, true), nil
}

// WaitForCompletion waits until the instance has finished (Completed, Failed, Terminated or
// Canceled) and returns its status with input and output.
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*Instance, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	si, err := p.WaitForCompletion(ctx, id)
	if err != nil {
		return nil, err
	}
	return publicInstance(si, true), nil
}
