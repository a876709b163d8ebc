package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// episodeHost is an engine on a fresh SQLite file with the orchestrators and activities of one
// test: the engine without the public package's App.
type episodeHost struct {
	t    *testing.T
	st   store.Store
	eng  *Engine
	orch map[string]replay.Func
	acts map[string]ActivityFunc
}

func (h *episodeHost) Orchestrator(name string) (replay.Func, bool) {
	f, ok := h.orch[name]
	return f, ok
}

func (h *episodeHost) Activity(name string) (ActivityFunc, bool) {
	f, ok := h.acts[name]
	return f, ok
}

func (h *episodeHost) Names() (orchestrators, activities store.Names) {
	for name := range h.orch {
		orchestrators = append(orchestrators, name)
	}
	for name := range h.acts {
		activities = append(activities, name)
	}
	return orchestrators, activities
}

// newEpisodeHost starts an engine; cacheSize < 0 makes every episode replay its history.
func newEpisodeHost(t *testing.T, cacheSize int, orch map[string]replay.Func, acts map[string]ActivityFunc) *episodeHost {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "engine.db"), sqlite.Options{Durability: sqlite.DurabilityRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	h := &episodeHost{t: t, st: st, orch: orch, acts: acts}
	h.eng = New(Options{Store: st, Registry: h, CacheSize: cacheSize, PollInterval: 50 * time.Millisecond})
	h.eng.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.eng.Shutdown(ctx); err != nil {
			t.Errorf("engine shutdown: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	return h
}

func (h *episodeHost) start(id, name string, input string) {
	h.t.Helper()
	now := time.Now().UTC()
	ev := history.New(history.ExecutionStarted, now)
	ev.Name, ev.Input, ev.InstanceID, ev.ExecutionID = name, json.RawMessage(input), id, RandomID()
	m, err := control.Message(id, ev.ExecutionID, ev)
	if err != nil {
		h.t.Fatal(err)
	}
	inst := store.Instance{ID: id, Name: name, ExecutionID: ev.ExecutionID, Status: store.StatusPending,
		Input: ev.Input, CreatedAt: now, UpdatedAt: now}
	if err := h.st.CreateInstance(context.Background(), inst, m, store.ReuseIfFinished); err != nil {
		h.t.Fatal(err)
	}
}

// send delivers an event to the instance's inbox, as the client does (a rewind, an event).
func (h *episodeHost) send(id string, ev history.Event) {
	h.t.Helper()
	m, err := control.Message(id, "", ev)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.SendMessage(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// wait returns the instance once cond holds for it.
func (h *episodeHost) wait(id string, cond func(store.Instance) bool) store.Instance {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		changed, stop := h.st.WatchInstance(id)
		inst, err := h.st.GetInstance(ctx, id)
		if err == nil && cond(inst) {
			stop()
			return inst
		}
		select {
		case <-changed:
		case <-ctx.Done():
			stop()
			h.t.Fatalf("instance %s: %+v (err %v), still not in the state the test waits for", id, inst, err)
		}
		stop()
	}
}

func (h *episodeHost) waitDone(id string) store.Instance {
	return h.wait(id, func(i store.Instance) bool { return i.Status.Terminal() })
}

func (h *episodeHost) history(id string) []history.Event {
	h.t.Helper()
	chunks, err := h.st.History(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	events, err := history.DecodeAll(chunks)
	if err != nil {
		h.t.Fatal(err)
	}
	return events
}

func failureOf(t *testing.T, inst store.Instance) history.Failure {
	t.Helper()
	var f history.Failure
	if err := json.Unmarshal(inst.Failure, &f); err != nil {
		t.Fatalf("instance %s: failure %q: %v", inst.ID, inst.Failure, err)
	}
	return f
}

func echoActivity(_ context.Context, in []byte) ([]byte, error) { return in, nil }

// panicsWhenReplayed calls one activity; run again from its history, it panics: code changed
// under a running instance so that it now panics.
func panicsWhenReplayed(c *replay.Context) ([]byte, error) {
	if c.IsReplaying() {
		var none []int
		_ = none[len(c.Name())] // index out of range
	}
	return c.CallActivity("echo", "", []byte(`"a"`), nil).Await()
}

// A panic while the engine replays history fails the instance as a panic, with its stack, and
// the parent of a sub-orchestration hears of it; it is not reported as non-determinism.
func TestPanicDuringReplayIsAPanic(t *testing.T) {
	h := newEpisodeHost(t, -1, map[string]replay.Func{
		"panicky": panicsWhenReplayed,
		"parent": func(c *replay.Context) ([]byte, error) {
			_, err := c.CallSubOrchestrator("panicky", "child", "", nil, nil).Await()
			if err == nil {
				return nil, nil
			}
			return json.Marshal("child failed: " + err.Error())
		},
	}, map[string]ActivityFunc{"echo": echoActivity})

	h.start("p1", "panicky", `null`)
	inst := h.waitDone("p1")
	f := failureOf(t, inst)
	if inst.Status != store.StatusFailed || f.Type != "panic" || !strings.Contains(f.Message, "index out of range") ||
		!strings.Contains(f.StackTrace, "panicsWhenReplayed") {
		t.Fatalf("status %s, failure %+v; want Failed with the panic and a stack naming the orchestrator", inst.Status, f)
	}
	events := h.history("p1")
	last := events[len(events)-1]
	if last.Type != history.ExecutionCompleted || last.Failure == nil || last.Failure.Type != "panic" {
		t.Errorf("last history event %+v, want ExecutionCompleted with the panic", last)
	}

	h.start("p2", "parent", `null`)
	parent := h.waitDone("p2")
	if parent.Status != store.StatusCompleted || !strings.Contains(string(parent.Output), "panicked") {
		t.Fatalf("parent %s, output %s; want it told that the child panicked", parent.Status, parent.Output)
	}
}

// A rewind records each re-run as scheduled again, at the rewind, and replay (every episode
// replays here: no cache) skips these copies, so the instance completes.
func TestRewindRecordsReruns(t *testing.T) {
	var broken = make(chan struct{}, 1)
	broken <- struct{}{} // the first call fails
	h := newEpisodeHost(t, -1, map[string]replay.Func{
		"rewindable": func(c *replay.Context) ([]byte, error) {
			if _, err := c.CallActivity("flaky", "", []byte(`"x"`), nil).Await(); err != nil {
				return nil, err
			}
			return c.CallActivity("echo", "", []byte(`"after"`), nil).Await()
		},
	}, map[string]ActivityFunc{
		"echo": echoActivity,
		"flaky": func(context.Context, []byte) ([]byte, error) {
			select {
			case <-broken:
				return nil, errors.New("down")
			default:
				return []byte(`"ok"`), nil
			}
		},
	})
	h.start("r1", "rewindable", `null`)
	if inst := h.waitDone("r1"); inst.Status != store.StatusFailed {
		t.Fatalf("status %s, want Failed", inst.Status)
	}
	rw := history.New(history.ExecutionRewound, time.Now().UTC())
	rw.Input = json.RawMessage(`"fixed"`)
	h.send("r1", rw)
	if inst := h.wait("r1", func(i store.Instance) bool { return i.Status == store.StatusCompleted }); string(inst.Output) != `"after"` {
		t.Fatalf("output %s", inst.Output)
	}
	var kinds []string
	var rewoundAt time.Time
	for _, e := range h.history("r1") {
		switch e.Type {
		case history.ExecutionRewound:
			rewoundAt = e.Time
			if len(e.Voided) != 1 || e.Voided[0] != 0 {
				t.Errorf("rewind voids %v, want task 0", e.Voided)
			}
		case history.TaskScheduled:
			if !rewoundAt.IsZero() && e.Time.Before(rewoundAt) {
				t.Errorf("task %d %q scheduled at %s, before the rewind at %s", e.ID, e.Name, e.Time, rewoundAt)
			}
		case history.OrchestratorStarted:
			continue
		}
		if e.Type.Scheduling() {
			kinds = append(kinds, fmt.Sprintf("%s#%d", e.Type, e.ID))
		} else {
			kinds = append(kinds, fmt.Sprintf("%s#%d", e.Type, e.TaskID))
		}
	}
	want := "ExecutionStarted#0 TaskScheduled#0 TaskFailed#0 ExecutionCompleted#0 ExecutionRewound#0 TaskScheduled#0 TaskCompleted#0 TaskScheduled#1 TaskCompleted#1 ExecutionCompleted#0"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("history\n got %s\nwant %s", got, want)
	}
}
