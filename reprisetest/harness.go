// Package reprisetest runs orchestrators in unit tests: the real Reprise engine and replay
// executor, in the test's process, on a virtual clock.
//
// A Harness starts an App with the definitions under test. Its clock stands still while work
// can happen (episodes, activities, entity operations, messages being delivered) and jumps
// to the next due timer, retry back-off, event timeout or scheduled callback as soon as
// nothing else can happen, so a 30-day timer completes in milliseconds. Because it is the
// engine that production runs, what passes here behaves the same on a real host: the same
// history, the same determinism checks, the same failure semantics.
//
//	h := reprisetest.New(t, SayHello, HelloSequence)
//	r := h.Run(HelloSequence, reprise.None{})
//	r.RequireStatus(reprise.StatusCompleted)
//	got := reprisetest.Output[[]string](r)
//
// Activities and sub-orchestrators can be replaced by mocks (MockActivity, MockOrchestrator);
// the others run the registered code. At and After schedule callbacks at virtual times, to
// raise events, terminate, suspend or resume. When nothing can happen any more and an
// instance has not finished (it waits for an event nobody raises), Run returns it with
// Result.Stuck set instead of hanging.
//
// Call the Harness's methods from the test's goroutine: they fail the test with t.Fatal. A
// Harness shuts its App down in t.Cleanup, leaving no goroutine behind; tests that use one
// may run in parallel.
package reprisetest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/store"
)

// Options configure a Harness. The zero value is a good default.
type Options struct {
	// Start is where the virtual clock starts; zero means DefaultStart().
	Start time.Time
	// AppOptions are passed to reprise.NewApp after the harness's own (the store, the clock, a
	// logger that keeps the log for failure reports), so they may override the logger or the
	// engine's limits.
	AppOptions []reprise.Option
	// StallTimeout is how long, in real time, work may be in progress without any progress
	// before the harness fails the test (an orchestrator that blocks outside Await, an activity
	// that never returns); zero means 30s.
	StallTimeout time.Duration
	// MaxSteps bounds the clock moves of one call (Run, Wait, Advance), so that an eternal
	// orchestration fails the test instead of running for ever; zero means 100000.
	MaxSteps int
}

// Named is what the harness starts: an orchestrator definition (*reprise.Orchestrator), or a
// name (ByName).
type Named interface{ Name() string }

// ByName names an orchestrator, activity or sub-orchestrator by its registered name.
type ByName string

// Name returns the name.
func (n ByName) Name() string { return string(n) }

// Harness runs orchestrations on the real engine with a virtual clock. Make it with New.
type Harness struct {
	t     testing.TB
	opts  Options
	defs  []reprise.Definition
	clock *virtualClock
	log   *logRing

	mu        sync.Mutex
	started   bool
	app       *reprise.App
	st        *tracked
	mocks     map[mockKey]mock
	callbacks []callback
	seq       int

	driving    sync.Mutex  // one caller moves the clock at a time
	inCallback atomic.Bool // a callback runs: driving the clock from it would deadlock
}

type callback struct {
	at  time.Time
	seq int // callbacks due at the same time run in the order they were added
	fn  func(ctx context.Context, c *reprise.Client)
}

// New returns a Harness for the definitions (orchestrators, activities, entities), with the
// default Options. The App starts at the first call that needs it (Run, Start, Client, ...);
// declare mocks before that.
func New(t testing.TB, defs ...reprise.Definition) *Harness {
	t.Helper()
	return NewWithOptions(t, Options{}, defs...)
}

// NewWithOptions is New with options.
func NewWithOptions(t testing.TB, opts Options, defs ...reprise.Definition) *Harness {
	t.Helper()
	if opts.Start.IsZero() {
		opts.Start = DefaultStart()
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 30 * time.Second
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = 100000
	}
	return &Harness{
		t: t, opts: opts, defs: slices.Clone(defs),
		clock: newVirtualClock(opts.Start),
		log:   &logRing{max: 400},
		mocks: map[mockKey]mock{},
	}
}

// Now returns the time on the harness's virtual clock.
func (h *Harness) Now() time.Time { return h.clock.Now() }

// Client returns the App's client, starting the App if it has not started.
func (h *Harness) Client() *reprise.Client {
	h.t.Helper()
	return h.ensureStarted().Client()
}

// App returns the App under test, starting it if it has not started.
func (h *Harness) App() *reprise.App {
	h.t.Helper()
	return h.ensureStarted()
}

func (h *Harness) ctx() context.Context { return h.t.Context() }

// ensureStarted starts the App with the definitions and the mocks, once.
func (h *Harness) ensureStarted() *reprise.App {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return h.app
	}
	h.started = true
	raw := openStore(h.clock.Now)
	h.st = newTracked(raw)
	logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := append([]reprise.Option{
		reprise.WithStore(h.st),
		reprise.WithClock(h.clock),
		reprise.WithLogger(logger),
		reprise.WithoutMetrics(),
		reprise.WithHub(hub),
	}, h.opts.AppOptions...)
	app := reprise.NewApp(opts...)
	for _, d := range h.defs {
		if k, ok := kindOf(d); ok {
			if _, mocked := h.mocks[k]; mocked {
				continue // the mock stands in for it
			}
		}
		app.Register(d)
	}
	for _, m := range h.mocks {
		app.Register(m.definition())
	}
	if err := app.Start(h.ctx()); err != nil {
		_ = raw.Close()
		h.t.Fatalf("reprisetest: start the App: %v", err)
	}
	h.app = app
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			h.t.Errorf("reprisetest: shut the App down: %v", err)
		}
		if err := raw.Close(); err != nil {
			h.t.Errorf("reprisetest: close the test store: %v", err)
		}
	})
	return app
}

// kindOf returns the kind and name of a definition: an App that registers it alone says which
// it is (nothing is opened before Start).
func kindOf(d reprise.Definition) (mockKey, bool) {
	a := reprise.NewApp()
	a.Register(d)
	orchs, acts := a.Registered()
	switch {
	case len(orchs) == 1:
		return mockKey{kind: orchestratorMock, name: strings.ToLower(orchs[0])}, true
	case len(acts) == 1:
		return mockKey{kind: activityMock, name: strings.ToLower(acts[0])}, true
	}
	return mockKey{}, false
}

// Start starts an instance of the orchestrator and returns its ID, without moving the clock.
// Wait (or Run) runs it.
func (h *Harness) Start(o Named, input any, opts ...reprise.StartOption) string {
	h.t.Helper()
	id, err := h.Client().StartNew(h.ctx(), o.Name(), input, opts...)
	if err != nil {
		h.t.Fatalf("reprisetest: start %q: %v", o.Name(), err)
	}
	return id
}

// Run starts an instance of the orchestrator and runs it until it finishes or nothing can
// happen any more (Result.Stuck), moving the clock as timers come due.
func (h *Harness) Run(o Named, input any, opts ...reprise.StartOption) *Result {
	h.t.Helper()
	id := h.Start(o, input, opts...)
	return h.Wait(id)[0]
}

// Wait runs the instances until they have all finished, or nothing can happen any more, and
// returns their results in order. An instance that is still active then has Stuck set.
func (h *Harness) Wait(ids ...string) []*Result {
	h.t.Helper()
	h.ensureStarted()
	h.drive(func() bool {
		for _, id := range ids {
			inst, err := h.Client().GetInstance(h.ctx(), id, reprise.WithoutPayloads())
			if err != nil {
				h.t.Fatalf("reprisetest: read instance %q: %v", id, err)
			}
			if !inst.Status.Terminal() {
				return false
			}
		}
		return true
	}, time.Time{})
	out := make([]*Result, len(ids))
	for i, id := range ids {
		out[i] = h.Result(id)
		out[i].Stuck = !out[i].Status.Terminal()
	}
	return out
}

// Result returns the state of an instance now, without moving the clock: status, output,
// custom status, failure and history.
func (h *Harness) Result(id string) *Result {
	h.t.Helper()
	inst, err := h.Client().GetInstance(h.ctx(), id, reprise.WithHistory())
	if err != nil {
		h.t.Fatalf("reprisetest: read instance %q: %v", id, err)
	}
	return &Result{Instance: inst, Status: inst.Status, h: h, start: h.opts.Start}
}

// Settle runs what can happen without moving the clock, and returns when nothing can.
func (h *Harness) Settle() {
	h.t.Helper()
	h.ensureStarted()
	h.refuseInCallback()
	h.driving.Lock()
	defer h.driving.Unlock()
	for {
		h.quiesce()
		if !h.runDue() {
			return
		}
	}
}

// Advance moves the clock forward by d, as time would pass: each timer and callback due on the
// way fires at its time, and the harness waits for what it sets off before moving on. It
// returns when the clock reads Now()+d and nothing more can happen.
func (h *Harness) Advance(d time.Duration) {
	h.t.Helper()
	if d < 0 {
		h.t.Fatalf("reprisetest: Advance(%v): the clock cannot go back", d)
	}
	h.AdvanceTo(h.Now().Add(d))
}

// AdvanceTo is Advance to the instant t (which must not be before Now).
func (h *Harness) AdvanceTo(t time.Time) {
	h.t.Helper()
	if t.Before(h.Now()) {
		h.t.Fatalf("reprisetest: AdvanceTo(%v): the clock reads %v already and cannot go back", t, h.Now())
	}
	h.ensureStarted()
	h.drive(func() bool { return false }, t)
}

// At schedules fn at the virtual instant t: when the clock gets there, fn runs (on the
// goroutine that moves the clock) with the App's client, to raise events, terminate, suspend,
// resume or start instances. A t that has passed runs at the next Run, Wait, Settle or Advance.
// fn may call At, After, Start and Result, but not what moves the clock (Run, Wait, Settle,
// Advance): the clock moves on when it returns.
func (h *Harness) At(t time.Time, fn func(ctx context.Context, c *reprise.Client)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	h.callbacks = append(h.callbacks, callback{at: t, seq: h.seq, fn: fn})
}

// After is At(Now()+d, fn).
func (h *Harness) After(d time.Duration, fn func(ctx context.Context, c *reprise.Client)) {
	h.At(h.Now().Add(d), fn)
}

// drive runs work and moves the clock until done reports true (it returns true), or nothing
// can happen any more before limit (zero: ever), where the clock is left at limit.
func (h *Harness) drive(done func() bool, limit time.Time) bool {
	h.t.Helper()
	h.refuseInCallback()
	h.driving.Lock()
	defer h.driving.Unlock()
	for step := 0; ; step++ {
		if step > h.opts.MaxSteps {
			h.t.Fatalf("reprisetest: still running after %d moves of the clock (now %v): an orchestration that never ends? "+
				"Use Advance to run it for a while, or raise Options.MaxSteps", h.opts.MaxSteps, h.Now())
		}
		h.quiesce()
		if h.runDue() {
			continue // what the callbacks did must settle first
		}
		if done() {
			return true
		}
		next := h.nextDue()
		if !limit.IsZero() && (next.IsZero() || next.After(limit)) {
			if h.Now().Before(limit) {
				h.clock.set(limit)
				continue
			}
			return false
		}
		if next.IsZero() {
			return false
		}
		h.clock.set(next)
	}
}

// nextDue returns the earliest instant something is due: a message (timer, scheduled start or
// signal) or a callback; zero when nothing is.
func (h *Harness) nextDue() time.Time {
	h.t.Helper()
	next, err := h.st.Store.NextVisibleAt(h.ctx())
	if err != nil {
		h.t.Fatalf("reprisetest: read the next timer: %v", err)
	}
	h.mu.Lock()
	for _, c := range h.callbacks {
		if next.IsZero() || c.at.Before(next) {
			next = c.at
		}
	}
	h.mu.Unlock()
	return next
}

// runDue runs the callbacks due at the clock's time, in order, and reports whether it ran any.
func (h *Harness) runDue() bool {
	now := h.Now()
	h.mu.Lock()
	var due []callback
	h.callbacks = slices.DeleteFunc(h.callbacks, func(c callback) bool {
		if !c.at.After(now) {
			due = append(due, c)
			return true
		}
		return false
	})
	h.mu.Unlock()
	slices.SortFunc(due, func(a, b callback) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	h.inCallback.Store(true)
	defer h.inCallback.Store(false)
	for _, c := range due {
		c.fn(h.ctx(), h.app.Client())
	}
	return len(due) > 0
}

// refuseInCallback fails the test when a callback calls what moves the clock: the clock is
// being moved already, by the call that runs the callback.
func (h *Harness) refuseInCallback() {
	h.t.Helper()
	if h.inCallback.Load() {
		h.t.Fatalf("reprisetest: Run, Wait, Settle or Advance called from a callback (At, After); " +
			"callbacks use the client they are given, and the clock moves on when they return")
	}
}

// quiesce returns once nothing can happen without the clock moving: no claim, commit or send
// in progress, no claimed item unfinished, and no message visible or task ready in the store.
// The store is read between two looks at the generation of the tracked calls, so that a call
// that returned while it was read is noticed and the check made again.
func (h *Harness) quiesce() {
	h.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastGen, lastProgress := uint64(0), time.Now()
	checkedUnclaimed := false // at this generation
	for {
		select {
		case <-h.st.changed: // what is about to be read is newer than this nudge
		default:
		}
		busy, gen := h.st.busy()
		if gen != lastGen {
			lastGen, lastProgress, checkedUnclaimed = gen, time.Now(), false
		}
		var backlog store.Backlog
		if !busy {
			var err error
			backlog, err = h.st.Store.Backlog(h.ctx())
			if err != nil {
				h.t.Fatalf("reprisetest: read the backlog: %v", err)
			}
			if backlog == (store.Backlog{}) {
				if again, gen2 := h.st.busy(); !again && gen2 == gen {
					return
				}
				continue
			}
			// Ready work that nobody claims for a while may be work of a name that nothing
			// registered: say so at once rather than at the stall timeout.
			if !checkedUnclaimed && time.Since(lastProgress) > 200*time.Millisecond {
				checkedUnclaimed = true
				h.failOnUnclaimed()
			}
		}
		select {
		case <-h.st.changed:
		case <-tick.C:
			if time.Since(lastProgress) > h.opts.StallTimeout {
				h.t.Fatalf("reprisetest: no progress for %v with work in progress (%d claimed items unfinished, backlog %+v): "+
					"an orchestrator that blocks outside Await, or an activity that does not return. Recent log:\n%s",
					h.opts.StallTimeout, h.st.inflightCount(), backlog, h.log.String())
			}
		}
	}
}

// failOnUnclaimed fails the test if ready work has a name that the App did not register.
func (h *Harness) failOnUnclaimed() {
	h.t.Helper()
	orchs, acts := h.app.Registered()
	un, err := h.st.Store.Unclaimed(h.ctx(), orchs, acts)
	if err != nil {
		h.t.Fatalf("reprisetest: look for work of unregistered names: %v", err)
	}
	if len(un) == 0 {
		return
	}
	var names []string
	for _, u := range un {
		names = append(names, fmt.Sprintf("%s %q (%d waiting)", u.Kind, u.Name, u.Count))
	}
	h.t.Fatalf("reprisetest: work that nothing registered: %s; pass its definition to reprisetest.New, or mock it",
		strings.Join(names, ", "))
}

// logRing keeps the last lines the App logged, for failure reports.
type logRing struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (l *logRing) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == l.max {
		l.lines = slices.Delete(l.lines, 0, 1)
	}
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logRing) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Log returns the last lines the App logged (up to 400), as the failure reports show them.
func (h *Harness) Log() string { return h.log.String() }
