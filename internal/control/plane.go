// Package control owns the operations that start and command orchestration instances: start,
// get and query, raise, terminate, suspend, resume, rewind, restart, purge and wait. Every front
// end calls it — the root Client, the management API and the dashboard (through the root's
// adapters), and the gRPC service — so each operation validates its arguments, applies the
// status rules, builds its records and messages and reports its errors in one place. The engine
// builds the records and messages it writes in its episode commits with the same constructors
// (records.go).
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Options configure a Plane.
type Options struct {
	// Hub is the task hub's name, for error messages.
	Hub string
	// Registered reports whether an orchestrator is registered; Start refuses the others with
	// ErrNotRegistered. Nil accepts every name (workers elsewhere know their orchestrators).
	Registered func(name string) bool
	// HasEntity is Registered for entity names, which SignalEntity checks: a signal to an entity
	// that nothing runs would wait for ever. Nil accepts every name.
	HasEntity func(name string) bool
	// Now stamps the events the plane writes (starts, raised events, commands); nil means
	// time.Now. A test harness with a virtual clock sets it.
	Now func() time.Time
}

// Plane runs the control operations on a store. It holds no state of its own: one may be made
// per call.
type Plane struct {
	st   store.Store
	opts Options
}

// New returns a Plane on st.
func New(st store.Store, opts Options) *Plane { return &Plane{st: st, opts: opts} }

// now returns the current time, UTC, on the plane's clock.
func (p *Plane) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now().UTC()
	}
	return time.Now().UTC()
}

// fail reports a store error of an operation on one instance. The store's errors wrap the
// sentinels in text that names the store ("sqlite: purge ..."); a caller acts on the sentinel,
// so those are reported by it alone, with what to do. Other errors pass on whole.
func (p *Plane) fail(op, id string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%s %q: %w in task hub %q", op, id, ErrInstanceNotFound, p.opts.Hub)
	case errors.Is(err, store.ErrInstanceActive):
		return fmt.Errorf("%s %q: %w; terminate it first", op, id, ErrInstanceActive)
	case errors.Is(err, store.ErrNotFailed):
		return fmt.Errorf("%s %q: %w; %s", op, id, ErrNotFailed, advice(ErrNotFailed))
	}
	return fmt.Errorf("%s %q: %w", op, id, err)
}

// StartRequest is what Start starts.
type StartRequest struct {
	Name       string
	InstanceID string    // "" for a new random ID
	Input      any       // marshalled to JSON (a json.RawMessage is checked and kept)
	StartAt    time.Time // zero to start at once; until then the instance stays Pending
	Reuse      store.ReusePolicy

	// Version is the orchestration version ("" for none) and Tags the caller's labels (nil for
	// none); the instance and its ExecutionStarted event keep both. Trace is the caller's trace
	// context, which the ExecutionStarted event carries to the orchestration (nil for none).
	Version string
	Tags    map[string]string
	Trace   *history.TraceContext
}

// Start creates an instance of the orchestrator and returns its ID.
func (p *Plane) Start(ctx context.Context, r StartRequest) (string, error) {
	name := r.Name
	if err := CheckText("orchestrator name", name, MaxNameBytes); err != nil {
		return "", fmt.Errorf("start orchestrator: %w", err)
	}
	if p.opts.Registered != nil && !p.opts.Registered(name) {
		return "", fmt.Errorf("start orchestrator %q: %w: register it with App.Register", name, ErrNotRegistered)
	}
	if name == "" {
		return "", fmt.Errorf("start orchestrator: %w: the orchestrator name is empty", ErrInvalidArgument)
	}
	id := r.InstanceID
	if id == "" {
		id = NewID()
	} else if err := ValidateInstanceID(id); err != nil {
		return "", err
	}
	data, err := json.Marshal(r.Input)
	if err != nil {
		return "", fmt.Errorf("start orchestrator %q: %w: the input must be JSON-serialisable: %w", name, ErrInvalidArgument, err)
	}
	if err := CheckPayload("input", data); err != nil {
		return "", fmt.Errorf("start orchestrator %q: %w", name, err)
	}
	if !r.StartAt.IsZero() {
		if err := store.CheckTime("start time", r.StartAt); err != nil {
			return "", fmt.Errorf("start orchestrator %q: %w", name, err)
		}
	}
	if err := CheckStartLabels(r.Version, r.Tags, r.Trace); err != nil {
		return "", fmt.Errorf("start orchestrator %q: %w", name, err)
	}
	ev := StartEvent(id, NewID(), name, data, nil, p.now())
	ev.Version, ev.Tags, ev.Trace = r.Version, maps.Clone(r.Tags), cloneTrace(r.Trace)
	if len(ev.Tags) == 0 {
		ev.Tags = nil
	}
	inst, m, err := NewInstance(ev)
	if err != nil {
		return "", err
	}
	m.VisibleAt = r.StartAt
	if err := p.st.CreateInstance(ctx, inst, m, r.Reuse); err != nil {
		if errors.Is(err, store.ErrInstanceExists) {
			return "", p.exists(ctx, name, id)
		}
		return "", fmt.Errorf("start orchestrator %q as %q: %w", name, id, err)
	}
	return id, nil
}

// cloneTrace copies a trace context, so that the caller's later changes do not reach the event;
// one that names no trace at all is none.
func cloneTrace(tc *history.TraceContext) *history.TraceContext {
	if tc == nil || *tc == (history.TraceContext{}) {
		return nil
	}
	c := *tc
	return &c
}

// exists reports a start refused because the ID is taken, with what to do about it. The store's
// own text is not passed on: it names the store's internals.
func (p *Plane) exists(ctx context.Context, name, id string) error {
	advice := "wait for it to finish or terminate it, or start the orchestration under another instance ID"
	status := "still active"
	if inst, err := p.st.GetInstance(ctx, id); err == nil {
		status = inst.Status.String()
		if inst.Status.Terminal() {
			advice = "purge it, start with ReuseIfFinished, or choose another instance ID"
		}
	}
	return fmt.Errorf("start orchestrator %q as %q: %w (%s); %s", name, id, ErrInstanceExists, status, advice)
}

// Restart starts the instance's orchestrator again with its original input, version and tags:
// under a new ID (newInstanceID) or the same one, which must have finished. It returns the ID
// started.
func (p *Plane) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	if err := CheckID(id); err != nil {
		return "", fmt.Errorf("restart: %w", err)
	}
	inst, err := p.instance(ctx, id)
	if err != nil {
		return "", p.fail("restart", id, err)
	}
	r := StartRequest{Name: inst.Name, Input: json.RawMessage(inst.Input), Version: inst.Version, Tags: inst.Tags}
	if len(inst.Input) == 0 {
		r.Input = json.RawMessage("null")
	}
	if !newInstanceID {
		r.InstanceID = id
	}
	return p.Start(ctx, r)
}

// Get returns the stored instance, or ErrInstanceNotFound.
func (p *Plane) Get(ctx context.Context, id string) (store.Instance, error) {
	if err := CheckID(id); err != nil {
		return store.Instance{}, fmt.Errorf("get instance: %w", err)
	}
	inst, err := p.instance(ctx, id)
	if err != nil {
		return store.Instance{}, p.fail("get instance", id, err)
	}
	return inst, nil
}

// instance reads an orchestration instance: an entity, which shares the instances' ID space
// ("@name@key"), is not one, and the instance operations treat it as not found.
func (p *Plane) instance(ctx context.Context, id string) (store.Instance, error) {
	inst, err := p.st.GetInstance(ctx, id)
	if err == nil && inst.Kind != store.KindOrchestration {
		return store.Instance{}, fmt.Errorf("%q is an entity: %w (use the entity operations)", id, store.ErrNotFound)
	}
	return inst, err
}

// History returns the events of the instance's current execution.
func (p *Plane) History(ctx context.Context, id string) ([]history.Event, error) {
	if err := CheckID(id); err != nil {
		return nil, fmt.Errorf("get history: %w", err)
	}
	if _, _, ok := store.ParseEntityInstanceID(id); ok {
		if _, err := p.instance(ctx, id); err != nil {
			return nil, p.fail("get history of", id, err)
		}
	}
	chunks, err := p.st.History(ctx, id)
	if err != nil {
		return nil, p.fail("get history of", id, err)
	}
	events, err := history.DecodeAll(chunks)
	if err != nil {
		return nil, fmt.Errorf("get history of %q: %w", id, err)
	}
	return events, nil
}

// List returns a page of the instances matching q and the next page's token ("" after the
// last). q is checked first (store.Query.Check); a malformed token is ErrInvalidToken.
func (p *Plane) List(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	return p.list(ctx, "list instances", q)
}

// list is List for the operation what (listing instances, querying entities), which its errors
// name.
func (p *Plane) list(ctx context.Context, what string, q store.Query) ([]store.Instance, string, error) {
	if err := q.Check(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	page, next, err := p.st.ListInstances(ctx, q)
	if errors.Is(err, store.ErrInvalidToken) {
		return nil, "", fmt.Errorf("%s: %w %q: pass back the token of a previous page unchanged", what, store.ErrInvalidToken, q.ContinuationToken)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	return page, next, nil
}

// Count counts the instances matching q's filters by status (paging fields are ignored);
// statuses without instances are absent.
func (p *Plane) Count(ctx context.Context, q store.Query) (map[store.Status]int, error) {
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	counts, err := p.st.CountInstances(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	return counts, nil
}

// send delivers a command or event to an instance whose status takes op.
func (p *Plane) send(ctx context.Context, what string, op Op, id string, ev history.Event) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	inst, err := p.instance(ctx, id)
	if err != nil {
		return p.fail(what, id, err)
	}
	if err := CheckStatus(op, inst.Status); err != nil {
		return fmt.Errorf("%s %q: %w (%s); %s", what, id, err, inst.Status, advice(err))
	}
	m, err := Message(id, "", ev)
	if err != nil {
		return err
	}
	if err := p.st.SendMessage(ctx, m); err != nil {
		return p.fail(what, id, err)
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

// Raise delivers an external event (data is marshalled to JSON) to an instance that has not
// finished.
func (p *Plane) Raise(ctx context.Context, id, name string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("raise event %q: %w: the data must be JSON-serialisable: %w", name, ErrInvalidArgument, err)
	}
	if name == "" {
		return fmt.Errorf("raise event on %q: %w: the event name is empty", id, ErrInvalidArgument)
	}
	if err := CheckText("event name", name, MaxNameBytes); err != nil {
		return fmt.Errorf("raise event on %q: %w", id, err)
	}
	if err := CheckPayload("event data", raw); err != nil {
		return fmt.Errorf("raise event %q on %q: %w", name, id, err)
	}
	ev := history.New(history.EventRaised, p.now())
	ev.Name, ev.Input = name, raw
	return p.send(ctx, fmt.Sprintf("raise event %q on", name), OpRaise, id, ev)
}

// reasonJSON encodes the reason of a command, checked (UTF-8 without NUL, at most
// MaxReasonBytes): json.Marshal would turn invalid bytes into U+FFFD without a word.
func reasonJSON(what, reason string) (json.RawMessage, error) {
	if err := CheckText("reason", reason, MaxReasonBytes); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	data, _ := json.Marshal(reason)
	return data, nil
}

// Terminate stops an instance that has not finished: it becomes Terminated with the reason as
// its output, and with recursive so do its open sub-orchestrations.
func (p *Plane) Terminate(ctx context.Context, id, reason string, recursive bool) error {
	r, err := reasonJSON("terminate", reason)
	if err != nil {
		return err
	}
	return p.send(ctx, "terminate", OpTerminate, id, Terminated(r, recursive, p.now()))
}

// Suspend pauses an instance that has not finished.
func (p *Plane) Suspend(ctx context.Context, id, reason string) error {
	return p.command(ctx, "suspend", OpSuspend, history.ExecutionSuspended, id, reason)
}

// Resume continues a suspended instance.
func (p *Plane) Resume(ctx context.Context, id, reason string) error {
	return p.command(ctx, "resume", OpResume, history.ExecutionResumed, id, reason)
}

// Rewind runs a Failed instance again from where it failed. The instance is Running when Rewind
// returns (the store sets it so as it takes the command), so that a wait for its completion that
// follows does not return the failure it had.
func (p *Plane) Rewind(ctx context.Context, id, reason string) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("rewind: %w", err)
	}
	r, err := reasonJSON("rewind", reason)
	if err != nil {
		return err
	}
	inst, err := p.instance(ctx, id)
	if err != nil {
		return p.fail("rewind", id, err)
	}
	if err := CheckStatus(OpRewind, inst.Status); err != nil {
		return fmt.Errorf("rewind %q: %w (%s); %s", id, err, inst.Status, advice(err))
	}
	// Its entity locks were released when it failed: replayed, it would go on as if it held
	// them, calling entities that others may now hold.
	events, err := p.History(ctx, id)
	if err != nil {
		return err
	}
	if open := history.OpenLocks(events); len(open) > 0 {
		return fmt.Errorf("rewind %q: %w: it failed inside a critical section (entities %v), whose locks were released when it failed; restart it instead",
			id, ErrInvalidArgument, open[0].Entities)
	}
	m, err := Message(id, "", Command(history.ExecutionRewound, r, p.now()))
	if err != nil {
		return err
	}
	if err := p.st.RewindInstance(ctx, id, m); err != nil {
		return p.fail("rewind", id, err)
	}
	return nil
}

func (p *Plane) command(ctx context.Context, what string, op Op, typ history.Type, id, reason string) error {
	r, err := reasonJSON(what, reason)
	if err != nil {
		return err
	}
	return p.send(ctx, what, op, id, Command(typ, r, p.now()))
}

// Purge deletes a finished instance and its history: ErrInstanceNotFound, or ErrInstanceActive
// for an instance that has not finished.
func (p *Plane) Purge(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := p.st.PurgeInstance(ctx, id); err != nil {
		return p.fail("purge", id, err)
	}
	return nil
}

// PurgeTree deletes a finished instance as Purge does, and first its sub-orchestrations (those
// its history created, and theirs, depth first) that have finished; one still running is left,
// as is its own tree. It returns how many instances it deleted. The instance itself must exist
// and have finished (ErrInstanceNotFound, ErrInstanceActive), as for Purge.
func (p *Plane) PurgeTree(ctx context.Context, id string) (int, error) {
	if err := CheckID(id); err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	inst, err := p.instance(ctx, id)
	if err != nil {
		return 0, p.fail("purge", id, err)
	}
	if !inst.Status.Terminal() {
		return 0, p.fail("purge", id, store.ErrInstanceActive)
	}
	return p.purgeTree(ctx, inst, map[string]bool{id: true})
}

func (p *Plane) purgeTree(ctx context.Context, inst store.Instance, seen map[string]bool) (int, error) {
	events, err := p.History(ctx, inst.ID)
	if err != nil && !errors.Is(err, ErrInstanceNotFound) {
		return 0, err
	}
	n := 0
	for _, ev := range events {
		if ev.Type != history.SubOrchestrationInstanceCreated || seen[ev.InstanceID] {
			continue
		}
		seen[ev.InstanceID] = true
		child, err := p.st.GetInstance(ctx, ev.InstanceID)
		if errors.Is(err, store.ErrNotFound) {
			continue // purged already, or never created (an ID conflict)
		}
		if err != nil {
			return n, p.fail("purge sub-orchestration", ev.InstanceID, err)
		}
		if child.ParentID != inst.ID || !child.Status.Terminal() {
			continue // another instance took the ID since, or it still runs
		}
		m, err := p.purgeTree(ctx, child, seen)
		n += m
		if err != nil {
			return n, err
		}
	}
	switch err := p.st.PurgeInstance(ctx, inst.ID); {
	case err == nil:
		return n + 1, nil
	case errors.Is(err, store.ErrNotFound):
		return n, nil // purged meanwhile by another caller
	default:
		return n, p.fail("purge", inst.ID, err)
	}
}

// PurgeMatchingTrees deletes the finished instances that match f, each with its finished
// sub-orchestrations (PurgeTree), and returns how many instances it deleted.
func (p *Plane) PurgeMatchingTrees(ctx context.Context, f store.PurgeFilter) (int, error) {
	if err := checkPurgeFilter(f); err != nil {
		return 0, err
	}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []store.Status{store.StatusCompleted, store.StatusFailed, store.StatusTerminated, store.StatusCanceled}
	}
	q := store.Query{Statuses: statuses, CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo, WithoutPayloads: true, PageSize: 100}
	n := 0
	for {
		// Each page is read from the start: the instances purged are gone from it.
		page, _, err := p.st.ListInstances(ctx, q)
		if err != nil {
			return n, fmt.Errorf("purge instances: after purging %d: %w", n, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		purged := 0
		for _, inst := range page {
			m, err := p.purgeTree(ctx, inst, map[string]bool{inst.ID: true})
			n, purged = n+m, purged+m
			if err != nil {
				return n, fmt.Errorf("purge instances: after purging %d: %w", n, err)
			}
		}
		if purged == 0 {
			return n, nil // nothing on the page could be purged: stop rather than loop
		}
	}
}

// checkPurgeFilter refuses a filter of statuses that are not final, or of dates out of range.
func checkPurgeFilter(f store.PurgeFilter) error {
	for _, s := range f.Statuses {
		if !s.Terminal() {
			return fmt.Errorf("purge instances: %w: status %s is not a final status; only Completed, Failed, Terminated and Canceled instances can be purged", ErrInvalidArgument, s)
		}
	}
	if err := f.Check(); err != nil {
		return fmt.Errorf("purge instances: %w", err)
	}
	return nil
}

// PurgeMatching deletes the finished instances that match f and returns how many. f's statuses
// must be final ones.
func (p *Plane) PurgeMatching(ctx context.Context, f store.PurgeFilter) (int, error) {
	if err := checkPurgeFilter(f); err != nil {
		return 0, err
	}
	n, err := p.st.PurgeInstances(ctx, f)
	if err != nil {
		return n, fmt.Errorf("purge instances: %w", err)
	}
	return n, nil
}

// WaitForStart waits until the instance has started (is no longer Pending) and returns it.
func (p *Plane) WaitForStart(ctx context.Context, id string) (store.Instance, error) {
	return p.wait(ctx, id, func(s store.Status) bool { return s != store.StatusPending })
}

// WaitForCompletion waits until the instance has finished (Completed, Failed, Terminated or
// Canceled) and returns it.
func (p *Plane) WaitForCompletion(ctx context.Context, id string) (store.Instance, error) {
	return p.wait(ctx, id, store.Status.Terminal)
}

// crossProcessCheck bounds how long a wait misses a change made by another process, which sends
// no in-process notification (store.WatchInstance).
const crossProcessCheck = 2 * time.Second

// wait reads the instance after each change the store signals until done holds: the watch is
// taken before the read, so no change between them is missed.
func (p *Plane) wait(ctx context.Context, id string, done func(store.Status) bool) (store.Instance, error) {
	if err := CheckID(id); err != nil {
		return store.Instance{}, fmt.Errorf("wait for instance: %w", err)
	}
	for {
		changed, stop := p.st.WatchInstance(id)
		si, err := p.instance(ctx, id)
		if err != nil {
			stop()
			return store.Instance{}, p.fail("wait for", id, err)
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
