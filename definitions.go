package reprise

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// Definition is an orchestrator or an activity, ready to be registered with App.Register.
type Definition interface {
	register(r *registry)
}

// Activity is a typed activity definition: a named Go function doing real work (I/O, calls to
// other systems). Activities run at least once: a crash before their result is committed runs them
// again, so make them idempotent where it matters.
type Activity[I, O any] struct {
	name string
	fn   func(context.Context, I) (O, error)
}

// NewActivity defines an activity. Its input and output travel as JSON. The context is cancelled
// when the app shuts down; ActivityInfoFrom(ctx) tells the instance, task and attempt.
func NewActivity[I, O any](name string, fn func(ctx context.Context, input I) (O, error)) *Activity[I, O] {
	return &Activity[I, O]{name: name, fn: fn}
}

// Name returns the activity's name.
func (a *Activity[I, O]) Name() string { return a.name }

// Call schedules the activity from an orchestrator.
func (a *Activity[I, O]) Call(ctx *OrchestrationContext, input I, opts ...CallOption) *Task[O] {
	return CallActivity[O](ctx, a.name, input, opts...)
}

func (a *Activity[I, O]) register(r *registry) {
	r.addActivity(a.name, func(ctx context.Context, raw []byte) ([]byte, error) {
		var in I
		if err := decode(raw, &in); err != nil {
			return nil, internalError(&Error{Type: "InvalidInput", NonRetriable: true,
				Message: fmt.Sprintf("activity %q: cannot decode input into %T: %v", a.name, in, err)})
		}
		out, err := a.fn(ctx, in)
		if err != nil {
			return nil, internalError(err)
		}
		data, err := json.Marshal(out)
		if err != nil {
			return nil, internalError(&Error{Type: "InvalidOutput", NonRetriable: true,
				Message: fmt.Sprintf("activity %q: output is not JSON-serialisable: %v", a.name, err)})
		}
		return data, nil
	})
}

// Orchestrator is a typed orchestrator definition: a deterministic Go function that coordinates
// activities, timers, events and sub-orchestrations, and is replayed from its history.
type Orchestrator[I, O any] struct {
	name string
	fn   func(*OrchestrationContext, I) (O, error)
}

// NewOrchestrator defines an orchestrator. Its input and output travel as JSON.
func NewOrchestrator[I, O any](name string, fn func(ctx *OrchestrationContext, input I) (O, error)) *Orchestrator[I, O] {
	return &Orchestrator[I, O]{name: name, fn: fn}
}

// Name returns the orchestrator's name.
func (o *Orchestrator[I, O]) Name() string { return o.name }

// Start starts a new instance and returns its ID.
func (o *Orchestrator[I, O]) Start(ctx context.Context, c *Client, input I, opts ...StartOption) (string, error) {
	return c.StartNew(ctx, o.name, input, opts...)
}

// Call runs the orchestrator as a sub-orchestration of the calling orchestrator.
func (o *Orchestrator[I, O]) Call(ctx *OrchestrationContext, input I, opts ...CallOption) *Task[O] {
	return CallSubOrchestrator[O](ctx, o.name, input, opts...)
}

func (o *Orchestrator[I, O]) register(r *registry) {
	r.addOrchestrator(o.name, func(oc *OrchestrationContext) ([]byte, error) {
		var in I
		if err := oc.GetInput(&in); err != nil {
			return nil, &Error{Type: "InvalidInput",
				Message: fmt.Sprintf("orchestrator %q: cannot decode input into %T: %v", o.name, in, err)}
		}
		out, err := o.fn(oc, in)
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("orchestrator %q: output is not JSON-serialisable: %w", o.name, err)
		}
		return data, nil
	})
}

// ActivityInfo describes the invocation an activity runs for.
type ActivityInfo struct {
	InstanceID string // the calling orchestration
	TaskID     int    // the call's sequence number in the orchestration
	Name       string // the activity's name
	// Version is the version the call was scheduled with: the calling orchestration's version,
	// unless the call gave one (WithVersion); "" for none. Activities are not matched against a
	// host's version (see Versioning): an activity whose behaviour changed between versions can
	// tell here which one called it.
	Version string
	Attempt int // 1 for the first attempt, n for the n-th under a RetryPolicy
}

// ActivityInfoFrom returns the invocation an activity's context belongs to; ok is false for
// other contexts.
func ActivityInfoFrom(ctx context.Context) (info ActivityInfo, ok bool) {
	i, ok := engine.ActivityInfoFrom(ctx)
	if !ok {
		return ActivityInfo{}, false
	}
	return ActivityInfo{InstanceID: i.InstanceID, TaskID: int(i.TaskID), Name: i.Name, Version: i.Version, Attempt: i.Attempt}, true
}

// registry holds an App's definitions. Names are case-insensitive, as in Durable Functions.
type registry struct {
	orchestrators map[string]replay.Func
	names         []string // orchestrator names as registered, for the dashboard's name filter
	activities    map[string]engine.ActivityFunc
	activityNames []string // as registered
	entities      map[string]entityFunc
	entityNames   []string // as registered
	app           *App
}

// checkName panics, as Register does for any programming error, on a name that no store can
// key (store.CheckText): work of that name would be stored but never claimed.
func checkName(kind, name string) {
	if name == "" {
		panic("reprise: " + kind + " with an empty name")
	}
	if err := store.CheckText(kind+" name", name, store.MaxKeyBytes); err != nil {
		panic(fmt.Sprintf("reprise: Register: %v; use a name of valid UTF-8 without NUL, at most %d bytes",
			err, store.MaxKeyBytes))
	}
}

func (r *registry) addActivity(name string, fn engine.ActivityFunc) {
	key := strings.ToLower(name)
	checkName("activity", name)
	if _, dup := r.activities[key]; dup {
		panic(fmt.Sprintf("reprise: activity %q registered twice", name))
	}
	r.activities[key] = fn
	r.activityNames = append(r.activityNames, name)
}

func (r *registry) addOrchestrator(name string, fn func(*OrchestrationContext) ([]byte, error)) {
	key := strings.ToLower(name)
	checkName("orchestrator", name)
	if _, dup := r.orchestrators[key]; dup {
		panic(fmt.Sprintf("reprise: orchestrator %q registered twice", name))
	}
	r.names = append(r.names, name)
	r.orchestrators[key] = func(rc *replay.Context) ([]byte, error) {
		out, err := fn(&OrchestrationContext{rc: rc, base: r.app.logger})
		return out, internalError(err)
	}
}

// Orchestrator implements engine.Registry.
func (r *registry) Orchestrator(name string) (replay.Func, bool) {
	f, ok := r.orchestrators[strings.ToLower(name)]
	return f, ok
}

// Names implements engine.Registry: the engine claims only work of these names.
func (r *registry) Names() (orchestrators, activities store.Names) {
	return slices.Clone(r.names), slices.Clone(r.activityNames)
}

// Activity implements engine.Registry.
func (r *registry) Activity(name string) (engine.ActivityFunc, bool) {
	f, ok := r.activities[strings.ToLower(name)]
	return f, ok
}
