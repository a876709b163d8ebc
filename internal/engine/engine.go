// Package engine runs orchestration episodes, activities and entity batches from a store: three
// dispatchers that claim work under leases, a lease renewer, the cache of live executions, and graceful shutdown.
//
// Lock and lease model: every work item is claimed with a lease (owner + token), or, for the
// activity tasks an episode schedules and this engine runs, committed already leased to it
// (local dispatch, localdispatch.go), which is the same lease without the claim. The engine keeps
// the set of claims it still works on (an episode running or committing, an activity running or
// completing) and the renewer extends those leases and no others, so that an item the engine gave
// up on (a commit that kept failing, an orchestrator that does not yield) expires and is claimed
// again, by this node or another. Each commit presents the lease and the store refuses it when
// the item was claimed again since (ErrLeaseLost), so a node that stalled past its lease never
// overwrites another's work, and a commit retried after a lost reply is never applied twice.
// Within the engine, the cache and claim-set mutexes are the only locks, and neither is held
// while calling the store or user code.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
)

// ActivityFunc is an activity as the engine runs it: JSON in, JSON out.
type ActivityFunc func(ctx context.Context, input []byte) ([]byte, error)

// Registry resolves orchestrator and activity names.
type Registry interface {
	Orchestrator(name string) (replay.Func, bool)
	Activity(name string) (ActivityFunc, bool)
	// Names lists what the registry resolves; the engine claims only work of these names (read
	// once, at Start), so hosts with different registrations can share a task hub.
	Names() (orchestrators, activities store.Names)
}

// Options configure an engine. Zero values take the defaults documented on each field.
type Options struct {
	Store    store.Store
	Registry Registry
	// Remote, when set, runs the engine's orchestrators and activities instead of Registry: see
	// Remote.
	Remote Remote
	// Signals, when set, is where the dispatchers get their wake-ups, instead of the store's
	// WorkSignal: it lets several engines share one store (see Signals).
	Signals *Signals
	// Entities, when set, runs entity batches (see EntityRunner); without it the engine takes no
	// entity work.
	Entities EntityRunner
	Logger   *slog.Logger // default: discards
	// Tracer emits the spans of durable work; nil emits none.
	Tracer *tracing.Tracer
	// Metrics, when set, is told of episodes, activities, batches and lost leases.
	Metrics *metrics.Metrics
	// Clock, when set, is the time of the events the engine records and of the timers it
	// waits for (a test harness's virtual clock); nil means real time. Leases, retries of
	// store errors, the deadlock timeout and polling keep real time whatever it is.
	Clock Clock

	MaxConcurrentOrchestrations int           // episodes in flight; default 256
	MaxConcurrentActivities     int           // activities in flight; default 256
	MaxConcurrentEntities       int           // entity batches in flight; default 256
	MaxEntityBatch              int           // operations in one entity batch; default 1000
	CacheSize                   int           // live executions kept between episodes; default 4096; <0 disables
	LeaseDuration               time.Duration // default 30s; renewed every third of it
	PollInterval                time.Duration // fallback polling for work from other processes; default 1s
	Owner                       string        // lease owner name; default a random ID
	// DeadlockTimeout is how long an orchestrator may run without yielding (awaiting a task or
	// returning) before its episode is given up as deadlocked; default 1s; <0 disables.
	DeadlockTimeout time.Duration
	// UnclaimedInterval is how often the engine looks for ready work of names it has not
	// registered (store.Unclaimed), to warn about work that no host takes; default 10 poll
	// intervals; <0 disables it. Work is reported once the same oldest item is seen waiting at
	// two looks.
	UnclaimedInterval time.Duration
	// Versioning decides which orchestration versions the engine runs and what it does with the
	// others (see versioning.go); the zero Policy runs every version.
	Versioning versioning.Policy
	// DisableLocalDispatch turns local dispatch off: an episode's activity tasks are then
	// committed unleased and claimed by whichever activity worker gets to them first, this
	// engine's included. By default, an engine that runs activities from its Registry commits
	// the tasks it can run, as many as it has free activity slots, already leased to itself and
	// runs them at once, without claiming them (see localdispatch.go).
	DisableLocalDispatch bool
	// VersionRejectDelay is how long an instance given back for its version (Reject) waits
	// before any host may claim it again, the first time; it doubles each time this engine gets
	// the same instance again, up to 5s and a third of LeaseDuration. Default 250ms.
	VersionRejectDelay time.Duration
}

// Clock is a time source for the engine: what the times of events are, and a wait for the
// time of the next timer that ends when the clock gets there (at once if it has).
type Clock interface {
	Now() time.Time
	// WaitUntil returns a channel that is ready once Now has reached t, and a function that
	// releases the wait when the caller stops waiting first.
	WaitUntil(t time.Time) (reached <-chan struct{}, stop func())
}

// now returns the time on the engine's clock, UTC.
func (e *Engine) now() time.Time {
	if e.opts.Clock != nil {
		return e.opts.Clock.Now().UTC()
	}
	return time.Now().UTC()
}

// Engine runs work from one store.
type Engine struct {
	opts   Options
	st     store.Store
	reg    Registry
	log    *slog.Logger
	tracer *tracing.Tracer
	cache  *cache

	stop      chan struct{} // closed by Shutdown: stop claiming
	halt      chan struct{} // closed by Shutdown when it stops waiting: stop renewing and retrying
	held      claims        // the claims the engine still works on; only these are renewed
	actCtx    context.Context
	actCancel context.CancelFunc
	episodes  sync.WaitGroup // running episodes
	acts      sync.WaitGroup // running activities
	loops     sync.WaitGroup // dispatchers
	renewing  chan struct{}  // closed when the renewer has ended
	orchSlots chan struct{}
	actSlots  chan struct{}
	entSlots  chan struct{}
	poke      chan struct{} // re-check for orchestration work after an episode
	actPoke   chan struct{} // an activity slot was freed while the activity dispatcher was starved
	// actStarved says the activity dispatcher may have work it left for want of a slot; only
	// then does a freed slot poke it (see dispatch).
	actStarved atomic.Bool
	entPoke    chan struct{} // an entity slot was freed
	startOnce  sync.Once
	stopOnce   sync.Once

	entities            entityCache
	orchNames, actNames store.Names // the registry's, read at Start
	unclaimed           unclaimedWatch
	rejects             rejects // instances given back for their version, for the backoff
}

// ActivityInfo describes the activity invocation an activity's context carries.
type ActivityInfo struct {
	InstanceID string
	TaskID     int32
	Name       string
	Version    string // the version the call was scheduled with (TaskScheduled.Version)
	Attempt    int
}

type activityInfoKey struct{}

// ActivityInfoFrom returns the invocation an activity's context belongs to.
func ActivityInfoFrom(ctx context.Context) (ActivityInfo, bool) {
	info, ok := ctx.Value(activityInfoKey{}).(ActivityInfo)
	return info, ok
}

// New returns an engine; Start runs it.
func New(opts Options) *Engine {
	if opts.MaxConcurrentOrchestrations <= 0 {
		opts.MaxConcurrentOrchestrations = 256
	}
	if opts.MaxConcurrentActivities <= 0 {
		opts.MaxConcurrentActivities = 256
	}
	if opts.MaxConcurrentEntities <= 0 {
		opts.MaxConcurrentEntities = 256
	}
	if opts.MaxEntityBatch <= 0 {
		opts.MaxEntityBatch = 1000
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 4096
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 30 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Owner == "" {
		opts.Owner = RandomID()
	}
	if opts.UnclaimedInterval == 0 {
		opts.UnclaimedInterval = 10 * opts.PollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DeadlockTimeout == 0 {
		opts.DeadlockTimeout = time.Second
	}
	if opts.VersionRejectDelay <= 0 {
		opts.VersionRejectDelay = 250 * time.Millisecond
	}
	actCtx, actCancel := context.WithCancel(context.Background())
	e := &Engine{
		opts: opts, st: opts.Store, reg: opts.Registry, log: opts.Logger, tracer: opts.Tracer,
		stop:      make(chan struct{}),
		halt:      make(chan struct{}),
		renewing:  make(chan struct{}),
		held:      claims{m: map[store.Claim]struct{}{}},
		actCtx:    actCtx,
		actCancel: actCancel,
		orchSlots: make(chan struct{}, opts.MaxConcurrentOrchestrations),
		actSlots:  make(chan struct{}, opts.MaxConcurrentActivities),
		entSlots:  make(chan struct{}, opts.MaxConcurrentEntities),
		poke:      make(chan struct{}, 1),
		actPoke:   make(chan struct{}, 1),
		entPoke:   make(chan struct{}, 1),
	}
	e.cache = newCache(opts.CacheSize, e.closeExec)
	e.entities.max = opts.CacheSize
	return e
}

// RandomID returns 32 random hex characters (control.NewID): owner names, and IDs in tests.
func RandomID() string { return control.NewID() }

// Owner returns the engine's lease owner name.
func (e *Engine) Owner() string { return e.opts.Owner }

// Start starts the dispatchers. It returns at once.
func (e *Engine) Start() {
	e.startOnce.Do(func() {
		if e.opts.Remote != nil {
			e.orchNames, e.actNames = e.opts.Remote.Names()
		} else {
			e.orchNames, e.actNames = e.reg.Names()
		}
		// A dispatcher with no names would claim nothing; not running it leaves the store's
		// signal to engines that have work to claim (a host of activities only, say).
		if len(e.orchNames) > 0 {
			e.loops.Add(1)
			go e.orchestrationLoop()
		}
		if len(e.actNames) > 0 {
			e.loops.Add(1)
			go e.activityLoop()
		}
		if e.opts.Entities != nil && len(e.opts.Entities.EntityNames()) > 0 {
			e.loops.Add(1)
			go e.entityLoop()
		}
		if e.opts.UnclaimedInterval > 0 {
			e.loops.Add(1)
			go e.unclaimedLoop()
		}
		go e.renewLoop()
	})
}

// Shutdown stops taking work and waits for running episodes and activities until ctx ends.
// Then it cancels the activities' contexts, releases the leases still held so that other nodes
// take over at once, and returns, without waiting for work that ignores its context: such work
// finishes in the background and its results are refused (the leases are gone), so it runs again
// elsewhere. It returns ctx's error if work was still running at the deadline.
func (e *Engine) Shutdown(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		close(e.stop)
		e.loops.Wait() // claims in flight return at once: their context ends with stop
		done := make(chan struct{})
		go func() {
			e.episodes.Wait()
			e.acts.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("shutdown: work still running at the deadline, its leases were released: %w", ctx.Err())
		}
		close(e.halt)
		e.actCancel()
		// Bounded by its own short timeout: past the deadline, a store that hangs must not hold
		// Shutdown, and if the release fails the leases expire by themselves.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if rerr := e.st.ReleaseLeases(rctx, e.opts.Owner); rerr != nil && !errors.Is(rerr, store.ErrClosed) {
			e.log.Warn("releasing leases at shutdown; other nodes take the work over when the leases expire", "err", rerr)
		}
		e.cache.close()
		e.startOnce.Do(func() { close(e.renewing) }) // never started: no renewer to wait for
		<-e.renewing                                 // at once: halt cancels a renewal in flight
	})
	return err
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// dispatch is the loop shared by both dispatchers: claim while there are free slots, run each
// item, and sleep until a wake-up, a timer, a freed slot or the poll interval.
//
// No empty claims (decision 0023, amended): the dispatcher claims again at once only when its
// claim filled every free slot, since a claim that took fewer than it could found all there was
// at that moment, and work that becomes claimable later sends a wake-up (the store's WorkSignal
// after the commit that made it; a timer's or an expired lease's time through NextVisibleAt or
// the poll interval). When starved is given (activities), it is set while the dispatcher may
// have left work for want of a slot (from before it counts the free slots until a claim that
// did not fill them), and the goroutines that free a slot poke only then, so that a freed slot
// after a claim that found everything costs no claim. Set before the count, it cannot miss a
// slot freed meanwhile: either the count sees the slot, or the freeing goroutine sees the flag.
// The orchestration and entity dispatchers are poked after every episode or batch all the
// same: a PostgreSQL claim counts one instance once per visible message against max, so it may
// take fewer than max and leave claimable instances, which the poke after the first episode
// catches at once instead of at the next poll.
func (e *Engine) dispatch(kind store.WorkKind, slots chan struct{}, poke <-chan struct{}, starved *atomic.Bool,
	claim func(ctx context.Context, max int) (int, error), nextTimer bool) {
	defer e.loops.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-e.stop; cancel() }()
	var signal <-chan struct{}
	if e.opts.Signals != nil {
		ch, unsubscribe := e.opts.Signals.Subscribe(kind)
		defer unsubscribe()
		signal = ch
	} else {
		signal = e.st.WorkSignal(kind)
	}
	backoff := 10 * time.Millisecond
	for !e.stopping() {
		if starved != nil {
			starved.Store(true)
		}
		free := cap(slots) - len(slots)
		if free > 0 {
			n, err := claim(ctx, free)
			if err != nil {
				if e.stopping() {
					return
				}
				e.log.Error("claiming work", "kind", kind, "err", err)
				select {
				case <-time.After(backoff):
				case <-e.stop:
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 10 * time.Millisecond
			if n >= free {
				continue // every free slot filled: there may be more
			}
			if starved != nil {
				starved.Store(false)
			}
		}
		wait := e.opts.PollInterval
		var reached <-chan struct{} // the clock got to the next timer (a Clock's wait)
		stopWait := func() {}
		if nextTimer && free > 0 {
			if next, err := e.st.NextVisibleAt(ctx); err == nil && !next.IsZero() {
				if e.opts.Clock == nil {
					wait = min(wait, max(time.Until(next), time.Millisecond))
				} else {
					reached, stopWait = e.opts.Clock.WaitUntil(next)
				}
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-signal:
		case <-poke: // a slot was freed, or a commit may have left work behind
		case <-timer.C:
		case <-reached:
		case <-e.stop:
		}
		timer.Stop()
		stopWait()
	}
}

func (e *Engine) orchestrationLoop() {
	e.dispatch(store.OrchestrationWorkKind, e.orchSlots, e.poke, nil, func(ctx context.Context, max int) (int, error) {
		work, err := e.st.ClaimOrchestrations(ctx, e.opts.Owner, e.claimNames(store.OrchestrationWorkKind), max, e.opts.LeaseDuration)
		if err != nil {
			return 0, err
		}
		for _, w := range work {
			e.orchSlots <- struct{}{}
			e.episodes.Add(1)
			e.held.add(w.Claim())
			go func() {
				defer func() {
					e.held.remove(w.Claim())
					<-e.orchSlots
					e.episodes.Done()
					e.wake()
				}()
				e.runEpisode(w)
			}()
		}
		return len(work), nil
	}, true)
}

// claimNames returns the names a claim of kind carries: the registry's, read at Start, or a
// Remote's as they are now (a worker stream leaves out the names its worker turned out not to
// run).
func (e *Engine) claimNames(kind store.WorkKind) store.Names {
	orch, act := e.orchNames, e.actNames
	if e.opts.Remote != nil {
		orch, act = e.opts.Remote.Names()
	}
	if kind == store.ActivityWorkKind {
		return act
	}
	return orch
}

// wake makes the orchestration dispatcher look for work again.
func (e *Engine) wake() { nudge(e.poke) }

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// renewLoop extends the leases of the claims the engine still works on, until Shutdown stops
// waiting for them.
func (e *Engine) renewLoop() {
	defer close(e.renewing)
	renew := func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.LeaseDuration/3)
		defer cancel()
		go func() {
			select { // a renewal that hangs must not outlive Shutdown's deadline
			case <-e.halt:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := e.st.RenewLeases(ctx, e.opts.Owner, e.held.list(), e.opts.LeaseDuration); err != nil &&
			!errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
			e.log.Error("renewing leases; work may be taken over by other nodes", "err", err)
		}
	}
	// Renew once at once: a store that routes instances to the host that has them cached (see
	// store/postgres) learns from it that this host is alive.
	renew()
	t := time.NewTicker(e.opts.LeaseDuration / 3)
	defer t.Stop()
	for {
		select {
		case <-e.halt:
			return
		case <-t.C:
			renew()
		}
	}
}

// claims is a set of claims.
type claims struct {
	mu sync.Mutex
	m  map[store.Claim]struct{}
}

func (c *claims) add(x store.Claim) {
	c.mu.Lock()
	c.m[x] = struct{}{}
	c.mu.Unlock()
}

func (c *claims) remove(x store.Claim) {
	c.mu.Lock()
	delete(c.m, x)
	c.mu.Unlock()
}

func (c *claims) list() []store.Claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]store.Claim, 0, len(c.m))
	for x := range c.m {
		out = append(out, x)
	}
	return out
}
