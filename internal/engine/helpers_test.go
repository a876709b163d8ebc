package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// registry is a fixed set of orchestrators and activities.
type registry struct {
	orchestrators map[string]replay.Func
	activities    map[string]engine.ActivityFunc
}

func (r registry) Orchestrator(name string) (replay.Func, bool) {
	f, ok := r.orchestrators[name]
	return f, ok
}

func (r registry) Activity(name string) (engine.ActivityFunc, bool) {
	f, ok := r.activities[name]
	return f, ok
}

func (r registry) Names() (orchestrators, activities store.Names) {
	for name := range r.orchestrators {
		orchestrators = append(orchestrators, name)
	}
	for name := range r.activities {
		activities = append(activities, name)
	}
	return orchestrators, activities
}

// runs counts the runs of each activity invocation (instance and task ID).
type runs struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *runs) add(ctx context.Context) {
	info, _ := engine.ActivityInfoFrom(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[fmt.Sprintf("%s#%d", info.InstanceID, info.TaskID)]++
}

func (r *runs) of(instanceID string, taskID int32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[fmt.Sprintf("%s#%d", instanceID, taskID)]
}

// chain is an orchestrator that adds one to its input three times, through the activity "inc".
func chain(c *replay.Context) ([]byte, error) {
	v := c.Input()
	for range 3 {
		out, err := c.CallActivity("inc", "", v, nil).Await()
		if err != nil {
			return nil, err
		}
		v = out
	}
	return v, nil
}

// chainRegistry registers chain and inc, counting inc's runs in r.
func chainRegistry(r *runs) registry {
	return registry{
		orchestrators: map[string]replay.Func{"chain": chain},
		activities: map[string]engine.ActivityFunc{"inc": func(ctx context.Context, in []byte) ([]byte, error) {
			r.add(ctx)
			var n int
			if err := json.Unmarshal(in, &n); err != nil {
				return nil, err
			}
			return json.Marshal(n + 1)
		}},
	}
}

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{Durability: sqlite.DurabilityRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// start creates an instance of the orchestrator name, as the client does.
func start(t *testing.T, st store.Store, name, id string, input any) {
	t.Helper()
	data, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	execID := engine.RandomID()
	ev := history.New(history.ExecutionStarted, now)
	ev.Name, ev.Input, ev.InstanceID, ev.ExecutionID = name, data, id, execID
	msg, err := history.EncodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	inst := store.Instance{ID: id, Name: name, ExecutionID: execID, Status: store.StatusPending, Input: data, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateInstance(t.Context(), inst, store.Message{InstanceID: id, ExecutionID: execID, Data: msg}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits for the instance to finish and returns it.
func waitDone(t *testing.T, st store.Store, id string, within time.Duration) store.Instance {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		changed, stop := st.WatchInstance(id)
		inst, err := st.GetInstance(t.Context(), id)
		if err != nil {
			// Tests that break the store's connections break the reads too: try again.
			stop()
			select {
			case <-time.After(20 * time.Millisecond):
				continue
			case <-deadline.C:
				t.Fatalf("GetInstance(%q): %v", id, err)
			}
		}
		if inst.Status.Terminal() {
			stop()
			return inst
		}
		select {
		case <-changed:
			stop()
		case <-deadline.C:
			stop()
			t.Fatalf("instance %q is still %s after %v", id, inst.Status, within)
		}
	}
}

// checkOnce fails the test unless every task in the instance's history was scheduled once and
// has exactly one result; it returns the tasks' IDs.
func checkOnce(t *testing.T, st store.Store, id string) []int32 {
	t.Helper()
	chunks, err := st.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := history.DecodeAll(chunks)
	if err != nil {
		t.Fatal(err)
	}
	scheduled := map[int32]bool{}
	results := map[int32]int{}
	var ids []int32
	for _, ev := range evs {
		switch ev.Type {
		case history.TaskScheduled:
			if scheduled[ev.ID] {
				t.Fatalf("instance %q: task %d scheduled twice", id, ev.ID)
			}
			scheduled[ev.ID] = true
			ids = append(ids, ev.ID)
		case history.TaskCompleted, history.TaskFailed:
			results[ev.TaskID]++
		}
	}
	for tid := range scheduled {
		if results[tid] != 1 {
			t.Fatalf("instance %q: task %d has %d results in its history, want 1", id, tid, results[tid])
		}
	}
	return ids
}

// logRecorder is a slog handler that tells waiters about the messages logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	subs  []chan string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	line := b.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	for _, c := range l.subs {
		select {
		case c <- line:
		default:
		}
	}
	return nil
}

// wait returns the first line logged (so far or from now on) that contains all of parts.
func (l *logRecorder) wait(t *testing.T, within time.Duration, parts ...string) string {
	t.Helper()
	match := func(line string) bool {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				return false
			}
		}
		return true
	}
	c := make(chan string, 1024)
	l.mu.Lock()
	for _, line := range l.lines {
		if match(line) {
			l.mu.Unlock()
			return line
		}
	}
	l.subs = append(l.subs, c)
	l.mu.Unlock()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case line := <-c:
			if match(line) {
				return line
			}
		case <-timer.C:
			t.Fatalf("nothing logged with %q within %v", parts, within)
		}
	}
}

func newEngine(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	e := engine.New(opts)
	e.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}
