package reprisetest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/reprise-dev/reprise"
)

type mockKind int

const (
	activityMock mockKind = iota
	orchestratorMock
)

// mockKey names what a mock stands in for: names are case-insensitive, as registrations are.
type mockKey struct {
	kind mockKind
	name string
}

// mock is a stand-in definition, registered instead of the real one of its name.
type mock interface{ definition() reprise.Definition }

// calls records the inputs of a mock's calls.
type calls[I any] struct {
	mu     sync.Mutex
	inputs []I
}

func (c *calls[I]) record(in I) {
	c.mu.Lock()
	c.inputs = append(c.inputs, in)
	c.mu.Unlock()
}

// Calls returns the inputs of the calls so far, in the order they ran: for an activity mock each
// attempt of a retried call is a call; for an orchestrator mock each instance is one, however
// often it is replayed.
func (c *calls[I]) Calls() []I {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.inputs)
}

// Count returns the number of calls so far.
func (c *calls[I]) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inputs)
}

// addMock registers m under k, before the App starts.
func (h *Harness) addMock(k mockKey, m mock) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		h.t.Fatalf("reprisetest: mock %q declared after the App started: declare mocks before the first Run, Start or Client", k.name)
	}
	if _, dup := h.mocks[k]; dup {
		h.t.Fatalf("reprisetest: %q mocked twice", k.name)
	}
	h.mocks[k] = m
}

// ActivityMock stands in for an activity: every call runs its behaviour (Returns, Fails or Do;
// by default the zero output) and is recorded. Its methods are safe for concurrent use, and
// the behaviour may be changed while the harness runs.
type ActivityMock[I, O any] struct {
	name     string
	calls[I] // Calls and Count
	mu       sync.Mutex
	fn       func(ctx context.Context, in I) (O, error)
}

// MockActivity replaces the activity a in the harness h with a mock of the same name and types.
// Declare it before the App starts (the first Run, Start or Client).
func MockActivity[I, O any](h *Harness, a *reprise.Activity[I, O]) *ActivityMock[I, O] {
	h.t.Helper()
	return MockActivityNamed[I, O](h, a.Name())
}

// MockActivityNamed is MockActivity for an activity known by name only (one called with
// reprise.CallActivity, or registered elsewhere). Input and output travel as JSON, so I and O
// need only be types its callers' values decode into (json.RawMessage takes anything).
func MockActivityNamed[I, O any](h *Harness, name string) *ActivityMock[I, O] {
	h.t.Helper()
	m := &ActivityMock[I, O]{name: name}
	h.addMock(mockKey{kind: activityMock, name: strings.ToLower(name)}, m)
	return m
}

// Returns makes every call return out.
func (m *ActivityMock[I, O]) Returns(out O) *ActivityMock[I, O] {
	return m.Do(func(context.Context, I) (O, error) { return out, nil })
}

// Fails makes every call fail with err (a *reprise.Error with NonRetriable set is not
// retried by a RetryPolicy).
func (m *ActivityMock[I, O]) Fails(err error) *ActivityMock[I, O] {
	return m.Do(func(context.Context, I) (O, error) { var zero O; return zero, err })
}

// Do makes every call run fn. reprise.ActivityInfoFrom(ctx) tells the attempt.
func (m *ActivityMock[I, O]) Do(fn func(ctx context.Context, in I) (O, error)) *ActivityMock[I, O] {
	m.mu.Lock()
	m.fn = fn
	m.mu.Unlock()
	return m
}

func (m *ActivityMock[I, O]) definition() reprise.Definition {
	return reprise.NewActivity(m.name, func(ctx context.Context, in I) (O, error) {
		m.record(in)
		m.mu.Lock()
		fn := m.fn
		m.mu.Unlock()
		if fn == nil {
			var zero O
			return zero, nil
		}
		return fn(ctx, in)
	})
}

// OrchestratorMock stands in for an orchestrator, typically one called as a sub-orchestration:
// each instance runs its behaviour (Returns, Fails or Do; by default the zero output) as an
// orchestration of the same name, and is recorded once (not again when replayed).
type OrchestratorMock[I, O any] struct {
	name     string
	calls[I] // Calls and Count
	mu       sync.Mutex
	fn       func(ctx *reprise.OrchestrationContext, in I) (O, error)
}

// MockOrchestrator replaces the orchestrator o in the harness h with a stand-in orchestrator of
// the same name and types. Declare it before the App starts.
func MockOrchestrator[I, O any](h *Harness, o *reprise.Orchestrator[I, O]) *OrchestratorMock[I, O] {
	h.t.Helper()
	return MockOrchestratorNamed[I, O](h, o.Name())
}

// MockOrchestratorNamed is MockOrchestrator by name: it registers a stand-in of that name,
// whether or not an orchestrator of the name was given to the harness.
func MockOrchestratorNamed[I, O any](h *Harness, name string) *OrchestratorMock[I, O] {
	h.t.Helper()
	m := &OrchestratorMock[I, O]{name: name}
	h.addMock(mockKey{kind: orchestratorMock, name: strings.ToLower(name)}, m)
	return m
}

// Returns makes every instance complete with out.
func (m *OrchestratorMock[I, O]) Returns(out O) *OrchestratorMock[I, O] {
	return m.Do(func(*reprise.OrchestrationContext, I) (O, error) { return out, nil })
}

// Fails makes every instance fail with err.
func (m *OrchestratorMock[I, O]) Fails(err error) *OrchestratorMock[I, O] {
	return m.Do(func(*reprise.OrchestrationContext, I) (O, error) { var zero O; return zero, err })
}

// Do makes every instance run fn, an orchestrator function: it must be deterministic, as any
// orchestrator (it is replayed).
func (m *OrchestratorMock[I, O]) Do(fn func(ctx *reprise.OrchestrationContext, in I) (O, error)) *OrchestratorMock[I, O] {
	m.mu.Lock()
	m.fn = fn
	m.mu.Unlock()
	return m
}

func (m *OrchestratorMock[I, O]) definition() reprise.Definition {
	return reprise.NewOrchestrator(m.name, func(ctx *reprise.OrchestrationContext, in I) (O, error) {
		if !ctx.IsReplaying() {
			m.record(in)
		}
		m.mu.Lock()
		fn := m.fn
		m.mu.Unlock()
		if fn == nil {
			var zero O
			return zero, nil
		}
		return fn(ctx, in)
	})
}
