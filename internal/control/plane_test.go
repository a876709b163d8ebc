package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/sqlite"
)

const orch = "Orch"

// newPlane returns a plane on a new SQLite store that knows one orchestrator, orch.
func newPlane(t *testing.T) (*control.Plane, store.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "control.db"), sqlite.Options{Durability: sqlite.DurabilityRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return control.New(st, control.Options{Hub: "hub", Registered: func(n string) bool { return strings.EqualFold(n, orch) }}), st
}

// claim leases the instance's work, failing the test if there is none.
func claim(t *testing.T, st store.Store) store.OrchestrationWork {
	t.Helper()
	work, err := st.ClaimOrchestrations(t.Context(), "test", store.Names{orch}, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(work) != 1 {
		t.Fatalf("claimed %d instances, want 1", len(work))
	}
	return work[0]
}

// setStatus commits one episode that consumes the instance's messages and leaves it in s, as
// the engine would.
func setStatus(t *testing.T, st store.Store, s store.Status) {
	t.Helper()
	w := claim(t, st)
	ep := store.Episode{Lease: w.Lease, Instance: w.Instance}
	for _, m := range w.Messages {
		ep.Consumed = append(ep.Consumed, m.ID)
	}
	ep.Instance.Status, ep.Instance.UpdatedAt = s, time.Now().UTC()
	if err := st.CommitEpisode(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
}

// lastMessage claims the instance and returns its newest inbox message, decoded.
func lastMessage(t *testing.T, st store.Store) history.Event {
	t.Helper()
	w := claim(t, st)
	ev, err := history.DecodeEvent(w.Messages[len(w.Messages)-1].Data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestStatusRules(t *testing.T) {
	statuses := []store.Status{store.StatusPending, store.StatusRunning, store.StatusSuspended,
		store.StatusCompleted, store.StatusFailed, store.StatusTerminated}
	type op struct {
		name string
		run  func(p *control.Plane, id string) error
		want history.Type // the message it delivers
		// refuse returns the sentinel the operation gives in status s, nil if it is taken.
		refuse func(s store.Status) error
	}
	finished := func(s store.Status) error {
		if s.Terminal() {
			return control.ErrInstanceFinished
		}
		return nil
	}
	ctx := context.Background()
	ops := []op{
		{"raise", func(p *control.Plane, id string) error { return p.Raise(ctx, id, "e", 1) }, history.EventRaised, finished},
		{"terminate", func(p *control.Plane, id string) error { return p.Terminate(ctx, id, "r", true) }, history.ExecutionTerminated, finished},
		{"suspend", func(p *control.Plane, id string) error { return p.Suspend(ctx, id, "r") }, history.ExecutionSuspended, finished},
		{"resume", func(p *control.Plane, id string) error { return p.Resume(ctx, id, "r") }, history.ExecutionResumed, finished},
		{"rewind", func(p *control.Plane, id string) error { return p.Rewind(ctx, id, "r") }, history.ExecutionRewound,
			func(s store.Status) error {
				if s != store.StatusFailed {
					return control.ErrNotFailed
				}
				return nil
			}},
		{"purge", func(p *control.Plane, id string) error { return p.Purge(ctx, id) }, 0,
			func(s store.Status) error {
				if !s.Terminal() {
					return control.ErrInstanceActive
				}
				return nil
			}},
	}
	for _, o := range ops {
		for _, s := range statuses {
			t.Run(o.name+"/"+s.String(), func(t *testing.T) {
				p, st := newPlane(t)
				id, err := p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: "i", Input: "in"})
				if err != nil {
					t.Fatal(err)
				}
				if s != store.StatusPending {
					setStatus(t, st, s)
				}
				want := o.refuse(s)
				err = o.run(p, id)
				if !errors.Is(err, want) || (want == nil) != (err == nil) {
					t.Fatalf("%s of a %s instance: %v, want %v", o.name, s, err, want)
				}
				if o.name != "purge" && want != nil && o.want != 0 {
					if err := control.CheckStatus(opOf(o.name), s); !errors.Is(err, want) {
						t.Errorf("CheckStatus: %v, want %v", err, want)
					}
				}
				switch {
				case want != nil:
				case o.name == "purge":
					if _, err := p.Get(t.Context(), id); !errors.Is(err, control.ErrInstanceNotFound) {
						t.Errorf("get after purge: %v, want ErrInstanceNotFound", err)
					}
				default:
					ev := lastMessage(t, st)
					if ev.Type != o.want {
						t.Errorf("delivered %s, want %s", ev.Type, o.want)
					}
					if o.name == "terminate" && !ev.Recursive {
						t.Error("a recursive terminate was delivered without Recursive")
					}
				}
			})
		}
	}
}

func opOf(name string) control.Op {
	return map[string]control.Op{"raise": control.OpRaise, "terminate": control.OpTerminate,
		"suspend": control.OpSuspend, "resume": control.OpResume, "rewind": control.OpRewind}[name]
}

func TestValidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(p *control.Plane) error
		want error
	}{
		{"start empty name", func(p *control.Plane) error { _, err := p.Start(ctx, control.StartRequest{}); return err }, control.ErrNotRegistered},
		{"start unregistered", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: "Other"})
			return err
		}, control.ErrNotRegistered},
		{"start name with NUL", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: "a\x00"})
			return err
		}, control.ErrInvalidArgument},
		{"start ID with slash", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, InstanceID: "a/b"})
			return err
		}, control.ErrInvalidInstanceID},
		{"start ID ..", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, InstanceID: ".."})
			return err
		}, control.ErrInvalidInstanceID},
		{"start entity ID", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, InstanceID: "@e"})
			return err
		}, control.ErrInvalidInstanceID},
		{"start ID too long", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, InstanceID: strings.Repeat("x", control.MaxInstanceIDBytes+1)})
			return err
		}, control.ErrInvalidInstanceID},
		{"start input not JSON-serialisable", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Input: func() {}})
			return err
		}, control.ErrInvalidArgument},
		{"start input not UTF-8", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Input: json.RawMessage("\"\xff\"")})
			return err
		}, control.ErrInvalidArgument},
		{"start version not UTF-8", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Version: "1.\xff"})
			return err
		}, control.ErrInvalidArgument},
		{"start version too long", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Version: strings.Repeat("1", control.MaxVersionBytes+1)})
			return err
		}, control.ErrInvalidArgument},
		{"start tag with NUL", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Tags: map[string]string{"k": "v\x00"}})
			return err
		}, control.ErrInvalidArgument},
		{"start tags too large", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Tags: map[string]string{"k": strings.Repeat("v", control.MaxTagsBytes)}})
			return err
		}, control.ErrInvalidArgument},
		{"start traceparent not UTF-8", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Trace: &history.TraceContext{TraceParent: "00-\xff"}})
			return err
		}, control.ErrInvalidArgument},
		{"start tracestate too long", func(p *control.Plane) error {
			_, err := p.Start(ctx, control.StartRequest{Name: orch, Trace: &history.TraceContext{TraceState: strings.Repeat("a", control.MaxTraceBytes+1)}})
			return err
		}, control.ErrInvalidArgument},
		{"raise empty name", func(p *control.Plane) error { return p.Raise(ctx, "i", "", nil) }, control.ErrInvalidArgument},
		{"raise unknown instance", func(p *control.Plane) error { return p.Raise(ctx, "nobody", "e", nil) }, control.ErrInstanceNotFound},
		{"terminate reason with NUL", func(p *control.Plane) error { return p.Terminate(ctx, "i", "a\x00", true) }, control.ErrInvalidArgument},
		{"suspend reason too long", func(p *control.Plane) error {
			return p.Suspend(ctx, "i", strings.Repeat("r", control.MaxReasonBytes+1))
		}, control.ErrInvalidArgument},
		{"get empty ID", func(p *control.Plane) error { _, err := p.Get(ctx, ""); return err }, control.ErrInvalidInstanceID},
		{"get ID with NUL", func(p *control.Plane) error { _, err := p.Get(ctx, "a\x00"); return err }, control.ErrInvalidInstanceID},
		{"history unknown instance", func(p *control.Plane) error { _, err := p.History(ctx, "nobody"); return err }, control.ErrInstanceNotFound},
		{"restart unknown instance", func(p *control.Plane) error { _, err := p.Restart(ctx, "nobody", true); return err }, control.ErrInstanceNotFound},
		{"purge unknown instance", func(p *control.Plane) error { return p.Purge(ctx, "nobody") }, control.ErrInstanceNotFound},
		{"purge by active status", func(p *control.Plane) error {
			_, err := p.PurgeMatching(ctx, store.PurgeFilter{Statuses: []store.Status{store.StatusRunning}})
			return err
		}, control.ErrInvalidArgument},
		{"list bad token", func(p *control.Plane) error {
			_, _, err := p.List(ctx, store.Query{ContinuationToken: "not a token"})
			return err
		}, control.ErrInvalidToken},
		{"count date out of range", func(p *control.Plane) error {
			_, err := p.Count(ctx, store.Query{CreatedFrom: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)})
			return err
		}, control.ErrInvalidArgument},
		{"wait empty ID", func(p *control.Plane) error { _, err := p.WaitForCompletion(ctx, ""); return err }, control.ErrInvalidInstanceID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPlane(t)
			if _, err := p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: "i"}); err != nil {
				t.Fatal(err)
			}
			err := tt.run(p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got, want := control.Classify(err), control.Classify(tt.want); got != want {
				t.Errorf("Classify = %d, want %d", got, want)
			}
		})
	}
}

func TestStartRecords(t *testing.T) {
	p, st := newPlane(t)
	later := time.Now().Add(time.Hour)
	id, err := p.Start(t.Context(), control.StartRequest{Name: orch, Input: map[string]int{"n": 1}, StartAt: later})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 {
		t.Errorf("random ID %q, want 32 hex characters", id)
	}
	inst, err := p.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != store.StatusPending || inst.Name != orch || string(inst.Input) != `{"n":1}` || inst.ExecutionID == "" {
		t.Errorf("instance %+v", inst)
	}
	// The start message waits for its time.
	work, err := st.ClaimOrchestrations(t.Context(), "test", store.Names{orch}, 1, time.Minute)
	if err != nil || len(work) != 0 {
		t.Fatalf("claimed %d instances before their start time (err %v)", len(work), err)
	}
	next, err := st.NextVisibleAt(t.Context())
	if err != nil || !next.After(time.Now()) {
		t.Errorf("next visible at %v, want the start time %v (err %v)", next, later, err)
	}

	// The same ID again: refused while it is active, with its status.
	_, err = p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: id})
	if !errors.Is(err, control.ErrInstanceExists) || !strings.Contains(err.Error(), "(Pending)") {
		t.Errorf("second start: %v, want ErrInstanceExists naming Pending", err)
	}
	if control.Classify(err) != control.KindExists {
		t.Errorf("Classify(%v) = %d", err, control.Classify(err))
	}
	// ReuseAlways replaces it with a new execution.
	if _, err := p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: id, Reuse: store.ReuseAlways}); err != nil {
		t.Fatal(err)
	}
	again, err := p.Get(t.Context(), id)
	if err != nil || again.ExecutionID == inst.ExecutionID {
		t.Errorf("replaced instance: execution %q, before %q (err %v)", again.ExecutionID, inst.ExecutionID, err)
	}
}

// A start's version, tags and trace context reach the instance and its ExecutionStarted event;
// a restart keeps the version and tags.
func TestStartVersionTagsTrace(t *testing.T) {
	p, st := newPlane(t)
	tags := map[string]string{"team": "payments", "ünï": "cödé"}
	trace := &history.TraceContext{TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "congo=t61rcWkgMzE", SpanID: "b7ad6b7169203331"}
	id, err := p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: "v", Version: "1.2", Tags: tags, Trace: trace})
	if err != nil {
		t.Fatal(err)
	}
	tags["team"], trace.SpanID = "changed after the start", "changed" // the start took copies
	inst, err := p.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"team": "payments", "ünï": "cödé"}
	if inst.Version != "1.2" || !maps.Equal(inst.Tags, want) {
		t.Errorf("instance version %q tags %v, want 1.2 %v", inst.Version, inst.Tags, want)
	}
	w := claim(t, st)
	ev, err := history.DecodeEvent(w.Messages[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != history.ExecutionStarted || ev.Version != "1.2" || !maps.Equal(ev.Tags, want) || ev.Trace == nil ||
		ev.Trace.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || ev.Trace.TraceState != "congo=t61rcWkgMzE" ||
		ev.Trace.SpanID != "b7ad6b7169203331" {
		t.Errorf("ExecutionStarted %+v (trace %+v)", ev, ev.Trace)
	}

	// A restart, under the same ID or a new one, keeps the version and tags.
	ep := store.Episode{Lease: w.Lease, Instance: w.Instance, Consumed: []int64{w.Messages[0].ID}}
	ep.Instance.Status = store.StatusCompleted
	if err := st.CommitEpisode(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	for _, newID := range []bool{false, true} {
		rid, err := p.Restart(t.Context(), id, newID)
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.Get(t.Context(), rid)
		if err != nil || again.Version != "1.2" || !maps.Equal(again.Tags, want) {
			t.Errorf("restarted (new ID %v) %q: version %q tags %v (err %v)", newID, rid, again.Version, again.Tags, err)
		}
	}

	// No version, tags or trace: none on the event either; an empty trace context is none.
	id, err = p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: "plain", Tags: map[string]string{}, Trace: &history.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	inst, _ = p.Get(t.Context(), id)
	if inst.Version != "" || inst.Tags != nil {
		t.Errorf("plain instance version %q tags %#v", inst.Version, inst.Tags)
	}
}

func TestNewInstanceOfSubOrchestration(t *testing.T) {
	now := time.Now().UTC()
	parent := &history.Parent{InstanceID: "p", ExecutionID: "pe", TaskID: 3, Name: "P"}
	start := control.StartEvent("c", "ce", "C", json.RawMessage(`1`), parent, now)
	start.Version, start.Tags = "2.0", map[string]string{"k": "v"}
	start.Trace = &history.TraceContext{TraceParent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"}
	inst, m, err := control.NewInstance(start)
	if err != nil {
		t.Fatal(err)
	}
	if inst.ID != "c" || inst.ExecutionID != "ce" || inst.ParentID != "p" || inst.Status != store.StatusPending ||
		!inst.CreatedAt.Equal(now) || string(inst.Input) != "1" || inst.Version != "2.0" || inst.Tags["k"] != "v" {
		t.Errorf("instance %+v", inst)
	}
	ev, err := history.DecodeEvent(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.InstanceID != "c" || m.ExecutionID != "ce" || ev.Type != history.ExecutionStarted || ev.Parent == nil || *ev.Parent != *parent ||
		ev.Version != "2.0" || ev.Tags["k"] != "v" || ev.Trace == nil || *ev.Trace != *start.Trace {
		t.Errorf("message %+v, event %+v", m, ev)
	}
}

func TestTerminateRecursiveFlag(t *testing.T) {
	for _, recursive := range []bool{true, false} {
		p, st := newPlane(t)
		id, err := p.Start(t.Context(), control.StartRequest{Name: orch})
		if err != nil {
			t.Fatal(err)
		}
		setStatus(t, st, store.StatusRunning)
		if err := p.Terminate(t.Context(), id, "stop", recursive); err != nil {
			t.Fatal(err)
		}
		ev := lastMessage(t, st)
		if ev.Type != history.ExecutionTerminated || ev.Recursive != recursive || string(ev.Input) != `"stop"` {
			t.Errorf("recursive %v: delivered %s recursive %v input %s", recursive, ev.Type, ev.Recursive, ev.Input)
		}
	}
}

func TestRestart(t *testing.T) {
	p, st := newPlane(t)
	id, err := p.Start(t.Context(), control.StartRequest{Name: orch, InstanceID: "r", Input: "in"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Restart(t.Context(), id, false); !errors.Is(err, control.ErrInstanceExists) {
		t.Errorf("restart of an active instance under its ID: %v, want ErrInstanceExists", err)
	}
	other, err := p.Restart(t.Context(), id, true)
	if err != nil || other == id {
		t.Fatalf("restart under a new ID: %q, %v", other, err)
	}
	setStatus(t, st, store.StatusCompleted)
	same, err := p.Restart(t.Context(), id, false)
	if err != nil || same != id {
		t.Fatalf("restart of a finished instance: %q, %v", same, err)
	}
	inst, err := p.Get(t.Context(), id)
	if err != nil || inst.Status != store.StatusPending || string(inst.Input) != `"in"` {
		t.Errorf("restarted instance %+v (err %v)", inst, err)
	}
}

func TestWait(t *testing.T) {
	p, st := newPlane(t)
	id, err := p.Start(t.Context(), control.StartRequest{Name: orch})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		inst store.Instance
		err  error
	}
	started, completed := make(chan result, 1), make(chan result, 1)
	go func() {
		inst, err := p.WaitForStart(t.Context(), id)
		started <- result{inst, err}
	}()
	go func() {
		inst, err := p.WaitForCompletion(t.Context(), id)
		completed <- result{inst, err}
	}()
	// Whether the waits read before or after this commit, they see it: each watches before it
	// reads.
	setStatus(t, st, store.StatusRunning)
	if r := <-started; r.err != nil || r.inst.Status != store.StatusRunning {
		t.Fatalf("WaitForStart: %v, %v", r.inst.Status, r.err)
	}
	select {
	case r := <-completed:
		t.Fatalf("WaitForCompletion returned for a running instance: %v, %v", r.inst.Status, r.err)
	default:
	}
	if err := p.Terminate(t.Context(), id, "done", true); err != nil {
		t.Fatal(err)
	}
	setStatus(t, st, store.StatusTerminated)
	if r := <-completed; r.err != nil || r.inst.Status != store.StatusTerminated {
		t.Fatalf("WaitForCompletion: %v, %v", r.inst.Status, r.err)
	}

	// A wait ends with its context.
	id2, err := p.Start(t.Context(), control.StartRequest{Name: orch})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.WaitForCompletion(ctx, id2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v, want context.Canceled", err)
	}
	if _, err := p.WaitForStart(t.Context(), "nobody"); !errors.Is(err, control.ErrInstanceNotFound) {
		t.Errorf("wait for an unknown instance: %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want control.Kind
	}{
		{errors.New("boom"), control.KindOther},
		{control.ErrInstanceNotFound, control.KindNotFound},
		{control.ErrInstanceExists, control.KindExists},
		{control.ErrInstanceFinished, control.KindFinished},
		{control.ErrInstanceActive, control.KindActive},
		{control.ErrNotFailed, control.KindNotFailed},
		{control.ErrInvalidInstanceID, control.KindInvalidInput},
		{control.ErrNotRegistered, control.KindInvalidInput},
		{control.ErrInvalidArgument, control.KindInvalidInput},
		{control.ErrInvalidToken, control.KindInvalidInput},
		{control.ErrNotStarted, control.KindUnavailable},
		{store.ErrClosed, control.KindUnavailable},
	}
	for _, tt := range tests {
		if got := control.Classify(errors.Join(errors.New("wrapped"), tt.err)); got != tt.want {
			t.Errorf("Classify(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
