package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// kindError is the fake's error: it carries its ErrorKind.
type kindError struct {
	kind ErrorKind
	msg  string
}

func (e *kindError) Error() string { return e.msg }

func errKind(k ErrorKind, format string, args ...any) error {
	return &kindError{kind: k, msg: fmt.Sprintf(format, args...)}
}

// fakeBackend is an in-memory Backend with the rules of the real one, and hooks to inject answers.
type fakeBackend struct {
	mu            sync.Mutex
	orchestrators map[string]bool
	instances     map[string]store.Instance
	histories     map[string][]history.Event
	nextID        int
	calls         []string // commands received, "op id arg"

	// failWith, when set, is returned by every method (after HasOrchestrator).
	failWith error
	// wait, when set, replaces WaitForCompletion.
	wait func(ctx context.Context, id string) (store.Instance, error)
	// lastQuery and lastPurge record the last ListInstances and PurgeInstances arguments.
	lastQuery store.Query
	lastPurge store.PurgeFilter
	lastEvent json.RawMessage
	lastStart json.RawMessage

	// entities holds the entities by instance ID; entityNames the names the app registered (none:
	// every name is accepted, as in an app whose entities run in gRPC workers).
	entities    map[string]control.EntityRecord
	entityNames []string
	signals     []control.SignalRequest
	lastEntityQ control.EntityQuery
	cleans      []control.CleanRequest
}

var baseTime = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

func newFake() *fakeBackend {
	return &fakeBackend{
		orchestrators: map[string]bool{"hello": true},
		instances:     map[string]store.Instance{},
		histories:     map[string][]history.Event{},
		entities:      map[string]control.EntityRecord{},
	}
}

// add stores an instance created n seconds after baseTime, with a little input and output.
func (f *fakeBackend) add(id string, s store.Status, n int) store.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	created := baseTime.Add(time.Duration(n) * time.Second)
	inst := store.Instance{
		ID: id, Name: "hello", Status: s, Input: []byte(`{"city":"Tokyo"}`),
		CreatedAt: created, UpdatedAt: created.Add(1500 * time.Millisecond),
	}
	switch s {
	case store.StatusCompleted:
		inst.Output = []byte(`["Hello Tokyo!"]`)
	case store.StatusFailed:
		inst.Output = []byte(`"boom"`)
		inst.Failure = []byte(`{"type":"Error","message":"boom"}`)
	case store.StatusTerminated:
		inst.Output = []byte(`"stopped"`)
	}
	f.instances[id] = inst
	return inst
}

func (f *fakeBackend) get(id string) (store.Instance, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.instances[id]
	return inst, ok
}

func (f *fakeBackend) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeBackend) Hub() string { return "TestHub" }

func (f *fakeBackend) HasOrchestrator(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.orchestrators[name]
}

func validID(id string) error {
	switch {
	case len(id) > 256, strings.HasPrefix(id, "@"), strings.ContainsAny(id, `/\?#`),
		strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errKind(KindInvalidInput, "invalid instance ID %q", id)
	}
	return nil
}

func (f *fakeBackend) StartNew(_ context.Context, name, id, version string, input json.RawMessage) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, err := f.startLocked(name, id, input)
	if err == nil {
		inst := f.instances[id]
		inst.Version = version
		f.instances[id] = inst
	}
	return id, err
}

func (f *fakeBackend) startLocked(name, id string, input json.RawMessage) (string, error) {
	if f.failWith != nil {
		return "", f.failWith
	}
	if id == "" {
		f.nextID++
		id = fmt.Sprintf("%032x", f.nextID)
	} else if err := validID(id); err != nil {
		return "", err
	}
	if old, ok := f.instances[id]; ok && old.Status.Active() {
		return "", errKind(KindExists, "instance %q already exists", id)
	}
	f.lastStart = slices.Clone(input)
	f.instances[id] = store.Instance{ID: id, Name: name, Status: store.StatusPending, Input: slices.Clone(input),
		CreatedAt: baseTime, UpdatedAt: baseTime}
	return id, nil
}

func (f *fakeBackend) GetInstance(_ context.Context, id string) (store.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return store.Instance{}, f.failWith
	}
	inst, ok := f.instances[id]
	if !ok {
		return store.Instance{}, errKind(KindNotFound, "instance %q not found", id)
	}
	return inst, nil
}

func (f *fakeBackend) History(_ context.Context, id string) ([]history.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.instances[id]; !ok {
		return nil, errKind(KindNotFound, "instance %q not found", id)
	}
	return f.histories[id], nil
}

// ListInstances pages by position; the token is "pos-N".
func (f *fakeBackend) ListInstances(_ context.Context, q store.Query) ([]store.Instance, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery = q
	if f.failWith != nil {
		return nil, "", f.failWith
	}
	var all []store.Instance
	for _, inst := range f.instances {
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, inst.Status) ||
			!q.CreatedFrom.IsZero() && inst.CreatedAt.Before(q.CreatedFrom) ||
			!q.CreatedTo.IsZero() && inst.CreatedAt.After(q.CreatedTo) ||
			!strings.HasPrefix(inst.ID, q.IDPrefix) ||
			len(q.Versions) > 0 && !slices.Contains(q.Versions, inst.Version) {
			continue
		}
		all = append(all, inst)
	}
	slices.SortFunc(all, func(a, b store.Instance) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if q.NewestFirst {
		slices.Reverse(all)
	}
	return fakePage(all, "pos-", q.ContinuationToken, q.PageSize)
}

// fakePage is the page of all that token (prefix and a position, as fakePage hands them out)
// names, of size items (0: 100), and the next page's token.
func fakePage[T any](all []T, prefix, token string, size int) ([]T, string, error) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, prefix))
		if err != nil || !strings.HasPrefix(token, prefix) || n < 0 || n > len(all) {
			return nil, "", errKind(KindInvalidInput, "invalid continuation token %q", token)
		}
		start = n
	}
	if size == 0 {
		size = 100
	}
	end := min(start+size, len(all))
	next := ""
	if end < len(all) {
		next = prefix + strconv.Itoa(end)
	}
	return all[start:end], next, nil
}

// command applies a control command to an active instance.
func (f *fakeBackend) command(op, id, arg string, apply func(*store.Instance)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	inst, ok := f.instances[id]
	if !ok {
		return errKind(KindNotFound, "instance %q not found", id)
	}
	if inst.Status.Terminal() {
		return errKind(KindFinished, "%s %q: instance has finished", op, id)
	}
	f.calls = append(f.calls, op+" "+id+" "+arg)
	if apply != nil {
		apply(&inst)
		f.instances[id] = inst
	}
	return nil
}

func (f *fakeBackend) RaiseEvent(_ context.Context, id, name string, data json.RawMessage) error {
	return f.command("raise", id, name, func(*store.Instance) { f.lastEvent = slices.Clone(data) })
}

func (f *fakeBackend) Terminate(_ context.Context, id, reason string) error {
	return f.command("terminate", id, reason, func(inst *store.Instance) {
		inst.Status, inst.Output = store.StatusTerminated, jsonString(reason)
	})
}

func (f *fakeBackend) Suspend(_ context.Context, id, reason string) error {
	return f.command("suspend", id, reason, func(inst *store.Instance) { inst.Status = store.StatusSuspended })
}

func (f *fakeBackend) Resume(_ context.Context, id, reason string) error {
	return f.command("resume", id, reason, func(inst *store.Instance) { inst.Status = store.StatusRunning })
}

// Rewind answers KindNotFailed for every status but Failed, as the root package does.
func (f *fakeBackend) Rewind(_ context.Context, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	inst, ok := f.instances[id]
	if !ok {
		return errKind(KindNotFound, "instance %q not found", id)
	}
	if inst.Status != store.StatusFailed {
		return errKind(KindNotFailed, "rewind %q (status %s): instance is not in the Failed state", id, inst.Status)
	}
	f.calls = append(f.calls, "rewind "+id+" "+reason)
	inst.Status = store.StatusRunning
	f.instances[id] = inst
	return nil
}

func (f *fakeBackend) Restart(_ context.Context, id string, newInstanceID bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return "", f.failWith
	}
	inst, ok := f.instances[id]
	if !ok {
		return "", errKind(KindNotFound, "instance %q not found", id)
	}
	newID := id
	if newInstanceID {
		newID = ""
	}
	return f.startLocked(inst.Name, newID, inst.Input)
}

func (f *fakeBackend) PurgeInstance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	inst, ok := f.instances[id]
	if !ok {
		return errKind(KindNotFound, "instance %q not found", id)
	}
	if inst.Status.Active() {
		return errKind(KindActive, "purge %q: instance is still active", id)
	}
	delete(f.instances, id)
	return nil
}

func (f *fakeBackend) PurgeInstances(_ context.Context, pf store.PurgeFilter) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastPurge = pf
	if f.failWith != nil {
		return 0, f.failWith
	}
	n := 0
	for id, inst := range f.instances {
		if inst.Status.Active() || len(pf.Statuses) > 0 && !slices.Contains(pf.Statuses, inst.Status) ||
			!pf.CreatedFrom.IsZero() && inst.CreatedAt.Before(pf.CreatedFrom) ||
			!pf.CreatedTo.IsZero() && inst.CreatedAt.After(pf.CreatedTo) {
			continue
		}
		delete(f.instances, id)
		n++
	}
	return n, nil
}

// WaitForCompletion returns a finished instance at once and otherwise blocks until ctx ends,
// unless the wait hook decides.
func (f *fakeBackend) WaitForCompletion(ctx context.Context, id string) (store.Instance, error) {
	if f.wait != nil {
		return f.wait(ctx, id)
	}
	inst, err := f.GetInstance(ctx, id)
	if err != nil {
		return store.Instance{}, err
	}
	if inst.Status.Terminal() {
		return inst, nil
	}
	<-ctx.Done()
	return store.Instance{}, ctx.Err()
}

func (f *fakeBackend) ErrorKind(err error) ErrorKind {
	if ke, ok := errors.AsType[*kindError](err); ok {
		return ke.kind
	}
	return KindOther
}
