package reprise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/internal/localguard"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/retention"
	"github.com/reprise-dev/reprise/internal/tracing"
	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// DefaultStorePath is the SQLite file an App uses when no store is configured.
const DefaultStorePath = "reprise.db"

// App is a Reprise application: the registered orchestrators and activities, the engine that runs
// them from a store, and a Client to start and manage instances.
//
// Create it with NewApp, Register definitions, then Start it; Shutdown stops it gracefully.
type App struct {
	cfg    config
	reg    *registry
	logger *slog.Logger
	client *Client

	mux    *http.ServeMux
	routes []route // user routes, for the start-up warning about keys

	mu        sync.Mutex
	st        store.Store
	ownsStore bool
	eng       *engine.Engine
	api       *httpapi.API
	dash      http.Handler // the dashboard, from Start on
	keys      keyring
	guard     *localguard.Guard // of the keyless routes, from Start on
	// retention purges finished instances in the background (WithRetention), from Start on; nil
	// when retention is off. Its Purged(status) counts what this host purged, and
	// retention.Options.OnPurge is the hook for a metric of it.
	retention *retention.Purger
	starting  bool // Start is opening the store (without mu)
	stopped   bool

	tracer        *tracing.Tracer                 // from Start on; off without a provider
	stopTracing   func(ctx context.Context) error // flushes a provider the App built
	tracingSource string                          // for the configuration log line
	metrics       *hostMetrics                    // from Start on; nil with metrics off
	instrumented  atomic.Pointer[http.Handler]    // the mux under the HTTP instrumentation, while metrics run
}

type config struct {
	store         store.Store
	storePath     string
	postgresDSN   string
	hub           string
	relaxed       bool
	maxOrch       int
	maxAct        int
	cacheSize     int
	leaseDuration time.Duration
	pollInterval  time.Duration
	deadlock      time.Duration
	logger        *slog.Logger
	clock         Clock            // WithClock; nil for real time
	now           func() time.Time // clock.Now, or nil: the control plane's clock

	tracerProvider trace.TracerProvider // WithTracerProvider

	addr                string
	keys                Keys
	anonymousManagement bool
	anonymousSet        bool // WithAnonymousManagement was given
	maxBody             int64
	shutdownTimeout     time.Duration
	allowedHosts        []string          // besides the loopback names, for the keyless routes
	timeouts            ServerTimeouts    // of the http.Server of Serve
	retentionOpt        Retention         // WithRetention
	retention           retentionConfig   // resolved by resolve
	versioningOpt       Versioning        // WithVersioning
	versioning          versioning.Policy // resolved by resolve
	// onPurge, when set, is called after each retention batch with what it purged of a status:
	// the hook for a metric of it (and for tests).
	onPurge       func(status store.Status, n int)
	meterProvider metric.MeterProvider // WithMeterProvider
	metricsOff    bool
	metricsSet    bool                // WithoutMetrics was given
	metricsAddr   string              // WithMetricsListener
	getenv        func(string) string // os.Getenv; replaced in tests
	src           sources             // where each setting came from, set by resolve
}

// Option configures an App.
type Option func(*config)

// WithStore runs the App on the given store (for example a PostgreSQL store). The App does not
// close a store it was given.
func WithStore(s store.Store) Option { return func(c *config) { c.store = s } }

// WithSQLiteFile sets the embedded SQLite store's file (default reprise.db in the working directory).
func WithSQLiteFile(path string) Option { return func(c *config) { c.storePath = path } }

// WithPostgres runs the App on PostgreSQL (a postgres:// DSN), where several hosts can share one
// task hub: any host runs any work, and the others take over the work of a host that dies.
func WithPostgres(dsn string) Option { return func(c *config) { c.postgresDSN = dsn } }

// WithRelaxedDurability makes the embedded SQLite store skip the fsync of each commit: much
// faster, but an operating-system crash or power loss can lose the last commits (not a process
// crash). Off by default.
func WithRelaxedDurability() Option { return func(c *config) { c.relaxed = true } }

// WithHub sets the task hub (default "default"): a namespace in the store.
func WithHub(name string) Option { return func(c *config) { c.hub = name } }

// WithMaxConcurrentOrchestrations bounds the orchestration episodes run at once (default 256).
func WithMaxConcurrentOrchestrations(n int) Option { return func(c *config) { c.maxOrch = n } }

// WithMaxConcurrentActivities bounds the activities run at once (default 256).
func WithMaxConcurrentActivities(n int) Option { return func(c *config) { c.maxAct = n } }

// WithCacheSize bounds the live executions kept in memory between episodes (default 4096). A
// cached execution continues without replay; others are replayed from history. 0 or less disables
// the cache.
func WithCacheSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = -1
		}
		c.cacheSize = n
	}
}

// WithLeaseDuration sets how long a claimed work item stays locked to this App without renewal
// (default 30s). After a crash, other nodes (or this one, restarted) take the work over when its
// leases expire.
func WithLeaseDuration(d time.Duration) Option { return func(c *config) { c.leaseDuration = d } }

// WithPollInterval sets how often the App looks for work that other processes added, when no
// wake-up reached it (default 1s). Work added in-process wakes it at once.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithDeadlockTimeout sets how long an orchestrator may run without yielding (awaiting a task or
// returning) before its episode is given up as deadlocked (default 1s; less than 0 disables the
// check). An orchestrator that blocks outside Await (a sleep, a channel, a lock, I/O) would
// otherwise hold its slot and its instance for ever; given up, it is logged as an error naming
// the orchestrator and the instance, and tried again when the instance's lease expires.
func WithDeadlockTimeout(d time.Duration) Option { return func(c *config) { c.deadlock = d } }

// WithLogger sets the structured logger. By default the App logs text (or JSON, with
// REPRISE_LOG_FORMAT=json) to standard error at the REPRISE_LOG_LEVEL level (default info).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithAddr sets the address ListenAndServe listens on (default 127.0.0.1:7071).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithKeys sets the keys that HTTP routes and the management API accept (see AuthLevel).
func WithKeys(k Keys) Option { return func(c *config) { c.keys = k } }

// WithAnonymousManagement serves the Durable Functions management API without a key, as the
// Functions Core Tools do on a developer's machine. Do not use it on a host others can reach.
func WithAnonymousManagement() Option {
	return func(c *config) { c.anonymousManagement, c.anonymousSet = true, true }
}

// WithMaxRequestBody bounds the size of HTTP request bodies, for user routes and the management
// API alike (default 4 MiB). Larger bodies are refused with 413 by the management API; user
// handlers get an error from reading the body past the limit.
func WithMaxRequestBody(n int64) Option { return func(c *config) { c.maxBody = n } }

// WithShutdownTimeout bounds how long ListenAndServe waits, once its context ends, for requests
// and running work to finish (default 30s).
func WithShutdownTimeout(d time.Duration) Option { return func(c *config) { c.shutdownTimeout = d } }

// Clock is a source of time for an App: the times of history events (and so
// OrchestrationContext.Now), when timers, retry back-offs and event timeouts are due, and
// when scheduled starts and signals become visible. It is for test harnesses with a virtual
// clock (package reprisetest); production leaves it unset, and the App runs on real time.
//
// Leases, the retries of store errors, the deadlock timeout and polling keep real time
// whatever the clock, so that a clock that stands still never stalls the engine.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// WaitUntil returns a channel that is ready (receives or is closed) once Now has reached
	// t, at once if it has, and a function that releases the wait when the caller stops
	// waiting first. A virtual clock makes the channel ready when it is moved past t.
	WaitUntil(t time.Time) (reached <-chan struct{}, stop func())
}

// WithClock runs the App on the clock c instead of real time (see Clock): for test harnesses;
// production leaves it unset. The SQLite store the App opens uses it too; a store given with
// WithStore must be opened on the same clock (sqlite.Options.Now).
func WithClock(c Clock) Option {
	return func(cfg *config) {
		cfg.clock, cfg.now = c, nil
		if c != nil {
			cfg.now = c.Now
		}
	}
}

// NewApp returns an App. Nothing is opened until Start.
func NewApp(opts ...Option) *App {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.getenv == nil {
		cfg.getenv = os.Getenv
	}
	a := &App{cfg: cfg, mux: http.NewServeMux()}
	a.reg = &registry{orchestrators: map[string]replay.Func{}, activities: map[string]engine.ActivityFunc{}, app: a}
	a.client = &Client{app: a}
	a.mountManagement()
	a.mountDashboard()
	a.mountMetrics()
	return a
}

// Register adds orchestrators and activities. It panics on a duplicate or empty name, or a name
// no store can key (not UTF-8, with a NUL, longer than store.MaxKeyBytes), which is a
// programming error. Register before Start.
func (a *App) Register(defs ...Definition) {
	for _, d := range defs {
		d.register(a.reg)
	}
}

// Start resolves the configuration (options, host.json, REPRISE_* environment variables), opens
// the store (the SQLite file unless WithStore was given) and starts running work. It returns once
// the App is running, or an error naming the setting that is invalid.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.eng != nil || a.starting {
		a.mu.Unlock()
		return errors.New("reprise: App already started")
	}
	if a.stopped {
		a.mu.Unlock()
		return errors.New("reprise: App was shut down; create a new one")
	}
	a.starting = true
	cfg := a.cfg
	a.mu.Unlock()

	tp, stopTracing := cfg.tracerProvider, func(context.Context) error { return nil }
	tracingSource := "WithTracerProvider"
	var err error
	if tp == nil {
		var stop func(context.Context) error
		if tp, stop, err = tracerFromEnv(ctx, cfg.getenv); err != nil {
			a.mu.Lock()
			a.starting = false
			a.mu.Unlock()
			return fmt.Errorf("reprise: %w", err)
		}
		tracingSource = "off (no WithTracerProvider, no OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT)"
		if stop != nil {
			stopTracing = stop
			tracingSource = "OTLP exporter (OTEL_* environment)"
		}
	}

	// Opening the store can take long (a PostgreSQL server that does not answer), so it runs
	// without a.mu, which every request takes: until Start is done they answer 503 at once.
	keys, guard, st, owns, err := openApp(ctx, &cfg)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.starting = false
	if err != nil {
		_ = stopTracing(ctx)
		return err
	}
	if a.stopped { // Shutdown ran meanwhile: it found nothing to stop
		if owns {
			_ = st.Close()
		}
		_ = stopTracing(ctx)
		return errors.New("reprise: App was shut down while it started; create a new one")
	}
	a.tracer, a.stopTracing, a.tracingSource = tracing.New(tp), stopTracing, tracingSource
	if a.tracer.On() && !a.tracer.KeepsIDs() {
		a.tracingSource += "; the provider does not keep the orchestration spans' IDs (build it with sdktrace.WithIDGenerator(reprise.TraceIDGenerator())): activities are parented to the orchestration's caller instead"
	}
	a.cfg, a.logger, a.keys, a.guard, a.st, a.ownsStore = cfg, cfg.logger, keys, guard, st, owns
	hm, err := a.startMetrics(&cfg, st)
	if err != nil {
		a.st = nil
		if owns {
			_ = st.Close()
		}
		return err
	}
	a.metrics = hm
	var meters *metrics.Metrics
	if hm != nil {
		meters = hm.m
		a.instrumented.Store(&hm.http)
	}
	var entities engine.EntityRunner
	if len(a.reg.entities) > 0 {
		entities = a.reg
	}
	a.eng = engine.New(engine.Options{
		Store:                       st,
		Registry:                    a.reg,
		Entities:                    entities,
		Logger:                      a.logger,
		Tracer:                      a.tracer,
		Metrics:                     meters,
		Clock:                       a.cfg.clock,
		MaxConcurrentOrchestrations: a.cfg.maxOrch,
		MaxConcurrentActivities:     a.cfg.maxAct,
		CacheSize:                   a.cfg.cacheSize,
		LeaseDuration:               a.cfg.leaseDuration,
		PollInterval:                a.cfg.pollInterval,
		DeadlockTimeout:             a.cfg.deadlock,
		Versioning:                  a.cfg.versioning,
	})
	a.eng.Start()
	if p := a.cfg.retention.policy(); p.Enabled() {
		a.retention = retention.New(retention.Options{
			Store:     st,
			Policy:    p,
			BatchSize: a.cfg.retention.batch,
			Pause:     a.cfg.retention.pause,
			Interval:  a.cfg.retention.interval,
			Logger:    a.logger,
			OnPurge: func(status store.Status, n int) {
				meters.Purged(status.String(), n)
				if a.cfg.onPurge != nil {
					a.cfg.onPurge(status, n)
				}
			},
		})
		a.retention.Start()
	}
	a.api = httpapi.New(httpapi.Options{
		Backend:   backend{a},
		Authorize: a.keys.management,
		// Cleaning entity storage changes every entity: the master key, as the dashboard.
		AuthorizeAdmin: a.keys.admin,
		SystemKey:      a.keys.system,
		MaxBodyBytes:   a.cfg.maxBody,
		Logger:         a.logger,
		Guard:          a.guard,
	})
	a.dash = a.newDashboard()
	a.logConfiguration()
	a.warnAboutKeys()
	return nil
}

// openApp resolves the configuration cfg (options, host.json, environment), builds the local
// guard, opens the store and builds the keyring (the generated keys are kept in the store): the
// part of Start that touches nothing shared. owns says whether the App opened the store (and so
// closes it).
func openApp(ctx context.Context, cfg *config) (kr keyring, guard *localguard.Guard, st store.Store, owns bool, err error) {
	if err := cfg.resolve(cfg.getenv); err != nil {
		return keyring{}, nil, nil, false, err
	}
	guard, err = localguard.New(cfg.allowedHosts)
	if err != nil {
		return keyring{}, nil, nil, false, fmt.Errorf("reprise: invalid setting REPRISE_ALLOWED_HOSTS (or WithAllowedHosts): %w", err)
	}
	st, owns, err = openStore(ctx, cfg)
	if err != nil {
		return keyring{}, nil, nil, false, err
	}
	keys, err := cfg.hostKeys(ctx, st)
	if err == nil {
		kr, err = newKeyring(keys, cfg.anonymousManagement)
	}
	if err != nil {
		if owns {
			_ = st.Close()
		}
		return keyring{}, nil, nil, false, err
	}
	return kr, guard, st, owns, nil
}

// openStore returns the store the configuration names: the one given in code, else a PostgreSQL
// or SQLite store it opens (owns).
func openStore(ctx context.Context, cfg *config) (st store.Store, owns bool, err error) {
	if cfg.store != nil {
		return cfg.store, false, nil
	}
	if cfg.postgresDSN != "" {
		s, err := postgres.Open(ctx, cfg.postgresDSN, postgres.Options{Hub: cfg.hub})
		if err != nil {
			return nil, false, fmt.Errorf("reprise: open the PostgreSQL store %s: %w", redactDSN(cfg.postgresDSN), err)
		}
		return s, true, nil
	}
	opts := sqlite.Options{Hub: cfg.hub, Now: cfg.now}
	if cfg.relaxed {
		opts.Durability = sqlite.DurabilityRelaxed
	}
	s, err := sqlite.Open(ctx, cfg.storePath, opts)
	if err != nil {
		return nil, false, fmt.Errorf("reprise: open the SQLite store %s: %w", cfg.storePath, err)
	}
	return s, true, nil
}

// Shutdown stops taking new work and waits for running episodes and activities until ctx ends;
// then activities' contexts are cancelled, leases still held are released (so another node can
// take the work at once) and the store is closed if the App opened it. It returns at the
// deadline even if an activity ignores its context: that activity's result is then refused, and
// the activity runs again on the next host.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	eng, st, owns, stopTracing, purger := a.eng, a.st, a.ownsStore, a.stopTracing, a.retention
	a.stopped = true
	a.mu.Unlock()
	if eng == nil {
		return nil
	}
	if purger != nil {
		// First, and at once: a purge batch in flight is cancelled, not waited for.
		_ = purger.Stop(ctx)
	}
	err := eng.Shutdown(ctx)
	if terr := stopTracing(ctx); terr != nil && err == nil {
		err = fmt.Errorf("reprise: flushing spans: %w", terr)
	}
	a.mu.Lock()
	a.st = nil // the client now answers ErrNotStarted, not the store's "closed"
	hm := a.metrics
	a.metrics = nil // stopped once: Shutdown may be called again
	a.mu.Unlock()
	if hm != nil { // before the store closes: the backlog gauge reads it
		a.instrumented.Store(nil)
		if merr := hm.shutdown(ctx); merr != nil && err == nil {
			err = fmt.Errorf("reprise: stop the metrics: %w", merr)
		}
	}
	if owns && st != nil {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// Client returns the App's client. Its methods fail with ErrNotStarted before Start.
func (a *App) Client() *Client { return a.client }

// Store returns the store the App runs on, for servers that run beside it on the same task hub
// (package sidecar); ErrNotStarted before Start and after Shutdown.
func (a *App) Store() (store.Store, error) { return a.store() }

// Registered returns the names of the orchestrators and activities registered with the App.
func (a *App) Registered() (orchestrators, activities []string) { return a.reg.Names() }

// RegisteredEntities returns the names of the entities registered with the App.
func (a *App) RegisteredEntities() []string { return a.reg.EntityNames() }

func (a *App) store() (store.Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return nil, ErrNotStarted
	}
	return a.st, nil
}

// now returns the time on the App's clock (WithClock), UTC.
func (a *App) now() time.Time {
	if a.cfg.now != nil {
		return a.cfg.now().UTC()
	}
	return time.Now().UTC()
}
