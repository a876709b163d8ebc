package reprise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
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
}

type startFunc func(*startConfig)

func (f startFunc) applyStart(c *startConfig) { f(c) }

// WithStartTime delays the start of the orchestration until t (the instance stays Pending).
func WithStartTime(t time.Time) StartOption { return startFunc(func(c *startConfig) { c.startAt = t }) }

// WithReusePolicy sets what happens when the instance ID already exists (default ReuseIfFinished).
func WithReusePolicy(p ReusePolicy) StartOption {
	return startFunc(func(c *startConfig) { c.reuse = p })
}

// ValidateInstanceID checks an instance ID chosen for a new instance against the Durable Functions
// rules, and against what would make its management URLs lead elsewhere ("." and "..").
func ValidateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidInstanceID)
	case len(id) > maxInstanceIDBytes:
		return fmt.Errorf("%w: it is %d bytes long, the limit is %d", ErrInvalidInstanceID, len(id), maxInstanceIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w %q: it is not valid UTF-8", ErrInvalidInstanceID, id)
	case id == "." || id == "..":
		return fmt.Errorf("%w %q: \".\" and \"..\" are path steps in URLs, so the instance's URLs would lead elsewhere", ErrInvalidInstanceID, id)
	case strings.HasPrefix(id, "@"):
		return fmt.Errorf("%w %q: IDs starting with '@' are reserved for entities", ErrInvalidInstanceID, id)
	case strings.ContainsAny(id, `/\?#`):
		return fmt.Errorf("%w %q: it must not contain '/', '\\', '?' or '#'", ErrInvalidInstanceID, id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%w %q: it must not contain control characters", ErrInvalidInstanceID, id)
	}
	return nil
}

// StartNew starts an instance of the orchestrator with the name and returns its ID: the one given
// with WithInstanceID, or 32 random hex characters.
func (c *Client) StartNew(ctx context.Context, name string, input any, opts ...StartOption) (string, error) {
	st, err := c.app.store()
	if err != nil {
		return "", err
	}
	var cfg startConfig
	for _, o := range opts {
		o.applyStart(&cfg)
	}
	if err := checkText("orchestrator name", name, maxNameBytes); err != nil {
		return "", fmt.Errorf("start orchestrator: %w", err)
	}
	if _, ok := c.app.reg.Orchestrator(name); !ok {
		return "", fmt.Errorf("start orchestrator %q: %w: register it with App.Register", name, ErrNotRegistered)
	}
	id := cfg.instanceID
	if id == "" {
		id = engine.RandomID()
	} else if err := ValidateInstanceID(id); err != nil {
		return "", err
	}
	data, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("start orchestrator %q: %w: the input must be JSON-serialisable: %w", name, ErrInvalidArgument, err)
	}
	if err := checkPayload("input", data); err != nil {
		return "", fmt.Errorf("start orchestrator %q: %w", name, err)
	}
	now := time.Now().UTC()
	execID := engine.RandomID()
	start := history.New(history.ExecutionStarted, now)
	start.Name, start.Input, start.InstanceID, start.ExecutionID = name, data, id, execID
	msg, err := history.EncodeEvent(start)
	if err != nil {
		return "", err
	}
	inst := store.Instance{ID: id, Name: name, ExecutionID: execID, Status: store.StatusPending,
		Input: data, CreatedAt: now, UpdatedAt: now}
	m := store.Message{InstanceID: id, ExecutionID: execID, Data: msg, VisibleAt: cfg.startAt}
	if err := st.CreateInstance(ctx, inst, m, cfg.reuse); err != nil {
		if errors.Is(err, store.ErrInstanceExists) {
			return "", c.exists(ctx, st, name, id)
		}
		return "", fmt.Errorf("start orchestrator %q as %q: %w", name, id, err)
	}
	return id, nil
}

// exists reports a start refused because the ID is taken, with what to do about it. The store's
// own text is not passed on: it names the store's internals.
func (c *Client) exists(ctx context.Context, st store.Store, name, id string) error {
	advice := "wait for it to finish or terminate it, or start the orchestration under another instance ID"
	status := "still active"
	if inst, err := st.GetInstance(ctx, id); err == nil {
		status = inst.Status.String()
		if inst.Status.Terminal() {
			advice = "purge it, start with ReuseIfFinished, or choose another instance ID"
		}
	}
	return fmt.Errorf("start orchestrator %q as %q: %w (%s); %s", name, id, ErrInstanceExists, status, advice)
}

// fail reports a store error of an operation on one instance. The store's errors wrap the
// sentinels in text that names the store ("sqlite: purge ..."); a caller acts on the sentinel,
// so those are reported by it alone, with what to do. Other errors pass on whole.
func (c *Client) fail(op, id string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s %q: %w in task hub %q", op, id, ErrInstanceNotFound, c.app.cfg.hub)
	case errors.Is(err, store.ErrInstanceActive):
		return fmt.Errorf("%s %q: %w; terminate it first", op, id, ErrInstanceActive)
	}
	return fmt.Errorf("%s %q: %w", op, id, err)
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
	st, err := c.app.store()
	if err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("get instance: %w", err)
	}
	var cfg getConfig
	for _, o := range opts {
		o(&cfg)
	}
	si, err := st.GetInstance(ctx, id)
	if err != nil {
		return nil, c.fail("get instance", id, err)
	}
	inst := publicInstance(si, !cfg.noPayloads)
	if cfg.history {
		chunks, err := st.History(ctx, id)
		if err != nil {
			return nil, c.fail("get history of", id, err)
		}
		events, err := history.DecodeAll(chunks)
		if err != nil {
			return nil, fmt.Errorf("get history of %q: %w", id, err)
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
		ParentInstanceID: si.ParentID, ExecutionID: si.ExecutionID,
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
}

// store returns q as the store takes it, checked: dates outside store.MinTime to store.MaxTime,
// and text that is not UTF-8 or holds NUL, are ErrInvalidArgument (a malformed token
// store.ErrInvalidToken too).
func (q Query) store() (store.Query, error) {
	sq := store.Query{
		Statuses: q.Statuses, CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo, IDPrefix: q.IDPrefix, Name: q.Name,
		PageSize: q.PageSize, ContinuationToken: q.ContinuationToken, WithoutPayloads: q.WithoutPayloads, NewestFirst: q.NewestFirst,
	}
	return sq, sq.Check()
}

// CountInstances counts the instances matching q's filters by status (paging fields are
// ignored); statuses without instances are absent. It reads every matching instance: on a hub
// of millions, prefer narrow filters.
func (c *Client) CountInstances(ctx context.Context, q Query) (map[RuntimeStatus]int, error) {
	st, err := c.app.store()
	if err != nil {
		return nil, err
	}
	sq, err := q.store()
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	counts, err := st.CountInstances(ctx, sq)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	return counts, nil
}

// ListInstances returns a page of the instances matching q, oldest first (or newest first), and
// the token of the next page ("" after the last page).
func (c *Client) ListInstances(ctx context.Context, q Query) ([]*Instance, string, error) {
	st, err := c.app.store()
	if err != nil {
		return nil, "", err
	}
	sq, err := q.store()
	if err != nil {
		return nil, "", fmt.Errorf("list instances: %w", err)
	}
	page, next, err := st.ListInstances(ctx, sq)
	if errors.Is(err, store.ErrInvalidToken) {
		return nil, "", fmt.Errorf("list instances: %w %q: pass back the token of a previous page unchanged", store.ErrInvalidToken, q.ContinuationToken)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list instances: %w", err)
	}
	out := make([]*Instance, len(page))
	for i, si := range page {
		out[i] = publicInstance(si, !q.WithoutPayloads)
	}
	return out, next, nil
}

// send delivers a control event to an active instance.
func (c *Client) send(ctx context.Context, op, id string, ev history.Event, allowed func(store.Status) error) error {
	st, err := c.app.store()
	if err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	inst, err := st.GetInstance(ctx, id)
	if err != nil {
		return c.fail(op, id, err)
	}
	if err := allowed(inst.Status); err != nil {
		return fmt.Errorf("%s %q: %w (%s); %s", op, id, err, inst.Status, advice(err))
	}
	data, err := history.EncodeEvent(ev)
	if err != nil {
		return err
	}
	if err := st.SendMessage(ctx, store.Message{InstanceID: id, Data: data}); err != nil {
		return c.fail(op, id, err)
	}
	return nil
}

// advice says what to do when an instance's status refuses an operation.
func advice(err error) string {
	if errors.Is(err, ErrNotFailed) {
		return "only a Failed instance can be rewound"
	}
	return "it takes no more events or commands"
}

func mustBeActive(s store.Status) error {
	if s.Terminal() {
		return ErrInstanceFinished
	}
	return nil
}

// RaiseEvent delivers an external event to an instance. Events for a name the orchestrator is
// not waiting for yet are kept until it waits. A finished instance gives ErrInstanceFinished.
func (c *Client) RaiseEvent(ctx context.Context, id, name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("raise event %q: %w: the data must be JSON-serialisable: %w", name, ErrInvalidArgument, err)
	}
	if name == "" {
		return fmt.Errorf("raise event on %q: %w: the event name is empty", id, ErrInvalidArgument)
	}
	if err := checkText("event name", name, maxNameBytes); err != nil {
		return fmt.Errorf("raise event on %q: %w", id, err)
	}
	if err := checkPayload("event data", raw); err != nil {
		return fmt.Errorf("raise event %q on %q: %w", name, id, err)
	}
	ev := history.New(history.EventRaised, time.Now().UTC())
	ev.Name, ev.Input = name, raw
	return c.send(ctx, fmt.Sprintf("raise event %q on", name), id, ev, mustBeActive)
}

// reasonJSON encodes the reason of a command, checked (UTF-8 without NUL, at most 64 KiB):
// json.Marshal would turn invalid bytes into U+FFFD without a word.
func reasonJSON(op, reason string) (json.RawMessage, error) {
	if err := checkText("reason", reason, maxReasonBytes); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	data, _ := json.Marshal(reason)
	return data, nil
}

// Terminate stops an instance: it becomes Terminated, with the reason as its output, and so do
// its running sub-orchestrations, recursively. Running activities finish but their results are
// ignored.
func (c *Client) Terminate(ctx context.Context, id, reason string) error {
	ev := history.New(history.ExecutionTerminated, time.Now().UTC())
	var err error
	if ev.Input, err = reasonJSON("terminate", reason); err != nil {
		return err
	}
	ev.Recursive = true
	return c.send(ctx, "terminate", id, ev, mustBeActive)
}

// Suspend pauses an instance: it becomes Suspended and processes nothing but Resume and
// Terminate; events that arrive meanwhile are kept and processed on Resume.
func (c *Client) Suspend(ctx context.Context, id, reason string) error {
	ev := history.New(history.ExecutionSuspended, time.Now().UTC())
	var err error
	if ev.Input, err = reasonJSON("suspend", reason); err != nil {
		return err
	}
	return c.send(ctx, "suspend", id, ev, mustBeActive)
}

// Resume continues a suspended instance.
func (c *Client) Resume(ctx context.Context, id, reason string) error {
	ev := history.New(history.ExecutionResumed, time.Now().UTC())
	var err error
	if ev.Input, err = reasonJSON("resume", reason); err != nil {
		return err
	}
	return c.send(ctx, "resume", id, ev, mustBeActive)
}

// Rewind runs a Failed instance again from where it failed: the activities and
// sub-orchestrations whose failures ended it run again, and what succeeded is kept. Deploy fixed
// code first when the failure came from the orchestrator itself (a non-determinism error, say).
func (c *Client) Rewind(ctx context.Context, id, reason string) error {
	ev := history.New(history.ExecutionRewound, time.Now().UTC())
	var err error
	if ev.Input, err = reasonJSON("rewind", reason); err != nil {
		return err
	}
	return c.send(ctx, "rewind", id, ev, func(s store.Status) error {
		if s != store.StatusFailed {
			return ErrNotFailed
		}
		return nil
	})
}

// Restart starts the instance's orchestrator again with its original input: under a new ID
// (newInstanceID) or the same one, which must have finished. It returns the ID started.
func (c *Client) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	st, err := c.app.store()
	if err != nil {
		return "", err
	}
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("restart: %w", err)
	}
	inst, err := st.GetInstance(ctx, id)
	if err != nil {
		return "", c.fail("restart", id, err)
	}
	var opts []StartOption
	if !newInstanceID {
		opts = append(opts, WithInstanceID(id))
	}
	input := json.RawMessage(inst.Input)
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	return c.StartNew(ctx, inst.Name, input, opts...)
}

// PurgeInstance deletes a finished instance and its history. It returns ErrInstanceNotFound, or
// ErrInstanceActive for an instance that has not finished (terminate it first).
func (c *Client) PurgeInstance(ctx context.Context, id string) error {
	st, err := c.app.store()
	if err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := st.PurgeInstance(ctx, id); err != nil {
		return c.fail("purge", id, err)
	}
	return nil
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
	st, err := c.app.store()
	if err != nil {
		return 0, err
	}
	for _, s := range f.Statuses {
		if !s.Terminal() {
			return 0, fmt.Errorf("purge instances: %w: status %s is not a final status; only Completed, Failed, Terminated and Canceled instances can be purged", ErrInvalidArgument, s)
		}
	}
	sf := store.PurgeFilter{CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo, Statuses: f.Statuses}
	if err := sf.Check(); err != nil {
		return 0, fmt.Errorf("purge instances: %w", err)
	}
	n, err := st.PurgeInstances(ctx, sf)
	if err != nil {
		return n, fmt.Errorf("purge instances: %w", err)
	}
	return n, nil
}

// WaitForStart waits until the instance has started (is no longer Pending) and returns its status.
func (c *Client) WaitForStart(ctx context.Context, id string) (*Instance, error) {
	si, err := c.waitFor(ctx, id, func(s store.Status) bool { return s != store.StatusPending })
	if err != nil {
		return nil, err
	}
	return publicInstance(si, true), nil
}

// WaitForCompletion waits until the instance has finished (Completed, Failed, Terminated or
// Canceled) and returns its status with input and output.
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*Instance, error) {
	si, err := c.waitFor(ctx, id, store.Status.Terminal)
	if err != nil {
		return nil, err
	}
	return publicInstance(si, true), nil
}

// crossProcessCheck bounds how long a wait misses a change made by another process, which sends
// no in-process notification.
const crossProcessCheck = 2 * time.Second

func (c *Client) waitFor(ctx context.Context, id string, done func(store.Status) bool) (store.Instance, error) {
	st, err := c.app.store()
	if err != nil {
		return store.Instance{}, err
	}
	if err := checkID(id); err != nil {
		return store.Instance{}, fmt.Errorf("wait for instance: %w", err)
	}
	for {
		changed, stop := st.WatchInstance(id)
		si, err := st.GetInstance(ctx, id)
		if err != nil {
			stop()
			return store.Instance{}, c.fail("wait for", id, err)
		}
		if done(si.Status) {
			stop()
			return si, nil
		}
		t := time.NewTimer(crossProcessCheck)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			stop()
			return store.Instance{}, fmt.Errorf("wait for %q (status %s): %w", id, si.Status, ctx.Err())
		}
		t.Stop()
		stop()
	}
}
