// Package bench runs Reprise's standard workloads (scenarios) on a store and measures them:
// throughput, latency percentiles, CPU time per orchestration and peak memory. Every scenario
// checks every output; a wrong output is an error, never a figure.
//
// It backs `reprise bench` and the Go benchmarks of the root package.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/store"
)

// Config configures a run. Zero values take the defaults documented on each field.
type Config struct {
	// Store is a SQLite file path; "" means a fresh temporary file per scenario, removed after.
	// Scenarios sharing a file each use a task hub of their own.
	Store string
	// Relaxed skips the fsync of each commit (see reprise.WithRelaxedDurability).
	Relaxed bool
	// NoMetrics turns the App's metrics off (reprise.WithoutMetrics); they are on by default,
	// as in a host.
	NoMetrics bool
	// N is the size of the run (instances, activities or steps; see each scenario); 0 means the
	// scenario's default.
	N int
	// Duration, when positive, bounds each run: when it is over, the run stops and reports what
	// completed until then.
	Duration time.Duration
	// TimerDelay is how long each instance of the timers scenario waits; default 1s.
	TimerDelay time.Duration
	// CacheSize and Concurrency set the App's execution cache and its concurrent episodes and
	// activities; defaults 20,000 and 1,000.
	CacheSize, Concurrency int
	// Progress, if set, is called from the run's goroutine as work completes.
	Progress func(done, total int)
	// Hosts is the number of Reprise hosts sharing the store; 0 means 1. More than one needs a
	// postgres:// Store and WorkerCommand: the run's App is the first host and WorkerCommand
	// starts each other one as a process of its own (see Worker).
	Hosts int
	// WorkerCommand is the program and arguments that start a worker host; the WorkerConfig's
	// Args are appended.
	WorkerCommand []string

	// Traces runs the App with an OpenTelemetry SDK tracer provider (batch span processor, an
	// exporter that discards what it is given), to measure what emitting spans costs.
	Traces bool

	wrongOutput bool // tests: make the activities answer wrongly, to see the check fail
	tracer      trace.TracerProvider
}

// Scenario is a named workload.
type Scenario struct {
	Name        string
	Description string
	DefaultN    int
	run         func(ctx context.Context, r *runner) error
}

// Scenarios returns the scenarios, in the order `reprise bench` runs them.
func Scenarios() []Scenario {
	return []Scenario{
		{"hello-sequence", "N instances of the 3-activity hello sequence, all started at once", 10000, helloSequence},
		{"fan-out", "one orchestration with N parallel activities, then fan-in", 10000, fanOut},
		{"long-sequence", "one orchestration with N sequential activities", 10000, longSequence},
		{"timers", "N instances each waiting on a short durable timer (TimerDelay)", 10000, timers},
		{"idle", "N instances waiting for an external event (memory per idle instance), then all released", 10000, idle},
		{"latency", "N instances one after another on an idle engine, start to Completed", 500, latency},
		{"entity-signals", "N signals to one entity, sent from 64 goroutines", 20000, entitySignals(1)},
		{"entity-signals-1000", "N signals spread over 1,000 entities", 20000, entitySignals(1000)},
		{"entity-critical-sections", "N transfers between two entities, each a critical section over both, all started at once", 2000, entityCriticalSections},
	}
}

// Names returns the scenario names.
func Names() []string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return names
}

// Result is what a run measured.
type Result struct {
	Scenario  string  `json:"scenario"`
	N         int     `json:"n"`
	Completed int     `json:"completed"` // instances (or activities, for fan-out and long-sequence) done and checked
	Stopped   bool    `json:"stoppedByDuration,omitempty"`
	Seconds   float64 `json:"seconds"`

	OrchestrationsPerSecond float64 `json:"orchestrationsPerSecond,omitempty"`
	ActivitiesPerSecond     float64 `json:"activitiesPerSecond,omitempty"`
	// EntityOperationsPerSecond counts entity operations run (signals processed), first signal
	// sent to the last one in the state; SignalsSentPerSecond is the rate at which the client
	// calls were accepted.
	EntityOperationsPerSecond float64 `json:"entityOperationsPerSecond,omitempty"`
	SignalsSentPerSecond      float64 `json:"signalsSentPerSecond,omitempty"`
	CPUMsPerEntityOperation   float64 `json:"cpuMsPerEntityOperation,omitempty"`
	// Latency is start to Completed per instance (for timers: how late each timer fired; for
	// idle: raise to Completed).
	Latency *Percentiles `json:"latencyMs,omitempty"`

	CPUSeconds             float64 `json:"cpuSeconds"`
	CPUMsPerOrchestration  float64 `json:"cpuMsPerOrchestration,omitempty"`
	CPUMsPerActivity       float64 `json:"cpuMsPerActivity,omitempty"`
	PeakMemoryBytes        uint64  `json:"peakMemoryBytes"`
	MemoryPerInstanceBytes float64 `json:"memoryPerIdleInstanceBytes,omitempty"`

	// Hosts is how many hosts ran the scenario; ActivitiesPerHost is how many activity
	// invocations each ran, the run's own App first. CPUSeconds is all hosts' CPU time.
	Hosts             int     `json:"hosts"`
	ActivitiesPerHost []int64 `json:"activitiesPerHost,omitempty"`
	// MachineCPUBusy is the share of the machine's CPU time (all processes, all cores) that was
	// busy during the run, from 0 to 1 (Linux only; 0 elsewhere). Near 1, the machine is the limit.
	MachineCPUBusy float64 `json:"machineCpuBusy,omitempty"`

	Store      string `json:"store"`
	Durability string `json:"durability"`
	Metrics    bool   `json:"metrics"` // the App recorded metrics

	// Transactions counts the store's write transactions and fsyncs in the measured phase; nil
	// when the store does not report them.
	Transactions *Transactions `json:"transactions,omitempty"`

	// Traced runs emitted spans (Config.Traces); Spans is how many reached the exporter.
	Traced bool  `json:"traced,omitempty"`
	Spans  int64 `json:"spans,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) *Percentiles {
	if len(d) == 0 {
		return nil
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	return &Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// ErrWrongOutput marks a run that produced a wrong output.
var ErrWrongOutput = errors.New("wrong output")

// Run runs the named scenario.
func Run(ctx context.Context, name string, cfg Config) (Result, error) {
	i := slices.IndexFunc(Scenarios(), func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		return Result{}, fmt.Errorf("bench: no scenario %q: want one of %s", name, strings.Join(Names(), ", "))
	}
	sc := Scenarios()[i]
	postgres := isPostgres(cfg.Store)
	if strings.Contains(cfg.Store, "://") && !postgres {
		return Result{}, fmt.Errorf("bench: store %q: want a SQLite file path or a postgres:// DSN", cfg.Store)
	}
	if cfg.Hosts <= 0 {
		cfg.Hosts = 1
	}
	if cfg.Hosts > 1 && !postgres {
		return Result{}, fmt.Errorf("bench: %d hosts need a shared postgres:// store, not %q", cfg.Hosts, cfg.Store)
	}
	if cfg.Hosts > 1 && len(cfg.WorkerCommand) == 0 {
		return Result{}, errors.New("bench: more than one host needs Config.WorkerCommand, the command that starts a worker host")
	}
	if cfg.N <= 0 {
		cfg.N = sc.DefaultN
	}
	if cfg.TimerDelay <= 0 {
		cfg.TimerDelay = time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 20000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1000
	}
	r := &runner{cfg: cfg, res: Result{Scenario: name, N: cfg.N, Hosts: cfg.Hosts, Durability: "durable (fsync per commit)"}}
	if cfg.Relaxed {
		r.res.Durability = "relaxed (no fsync per commit)"
	}
	r.res.Metrics = !cfg.NoMetrics
	path := cfg.Store
	hub := "bench"
	if path == "" {
		dir, err := os.MkdirTemp("", "reprise-bench-")
		if err != nil {
			return Result{}, fmt.Errorf("bench: temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "bench.db")
		r.res.Store = "sqlite (temporary file)"
	} else {
		hub = fmt.Sprintf("bench_%s_%d", strings.ReplaceAll(name, "-", "_"), time.Now().UnixNano())
		r.res.Store = "sqlite " + path + " (hub " + hub + ")"
	}
	if postgres {
		r.res.Store = "postgres " + redact(cfg.Store) + " (hub " + hub + ")"
	}
	appCfg := cfg
	appCfg.Store = path
	var spans *discardExporter
	var tp *sdktrace.TracerProvider
	if cfg.Traces {
		spans = &discardExporter{}
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithIDGenerator(reprise.TraceIDGenerator()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		appCfg.tracer = tp
		r.res.Traced = true
	}
	r.app = reprise.NewApp(appOptions(appCfg, hub)...)
	r.app.Register(r.definitions()...)
	if err := r.app.Start(ctx); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if cfg.Store != "" { // leave a shared store as it was found (the run's hub is its own)
			_, _ = r.app.Client().PurgeInstances(sctx, reprise.PurgeFilter{})
		}
		_ = r.app.Shutdown(sctx)
	}()
	var workers []*worker
	if cfg.Hosts > 1 {
		var err error
		if workers, err = startWorkers(ctx, cfg, hub, cfg.Hosts-1); err != nil {
			return Result{}, err
		}
		defer func() { _, _ = stopWorkers(workers) }() // on early returns; stopping twice is harmless
	}

	st, err := r.app.Store()
	if err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	obs, counted := st.(store.TransactionObserver)

	runtime.GC()
	mem := startMemorySampler()
	cpu0 := cpuTime()
	busy0 := machineCPU()
	if counted {
		remove := obs.ObserveTransactions(r.tx.observe)
		defer remove() // on early returns; removing twice is harmless
		r.stopCounting = remove
	}
	r.start = time.Now()
	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	err = sc.run(runCtx, r)
	if r.stopCounting != nil {
		r.stopCounting()
	}
	if r.res.Seconds == 0 {
		r.res.Seconds = time.Since(r.start).Seconds()
	}
	if tp != nil {
		_ = tp.ForceFlush(ctx) // the export of the last batch is part of the cost
		r.res.Spans = spans.n.Load()
	}
	r.res.CPUSeconds = (cpuTime() - cpu0).Seconds()
	r.res.MachineCPUBusy = machineCPU().busySince(busy0)
	r.res.PeakMemoryBytes = mem.stop()
	r.res.ActivitiesPerHost = []int64{r.activities.Load()}
	if len(workers) > 0 {
		reports, werr := stopWorkers(workers)
		workers = nil
		if werr != nil && err == nil {
			err = werr
		}
		for _, rep := range reports {
			r.res.ActivitiesPerHost = append(r.res.ActivitiesPerHost, rep.Activities)
			r.res.CPUSeconds += rep.CPUSeconds
		}
	}
	if err != nil {
		if cfg.Duration > 0 && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			r.res.Stopped = true
		} else {
			return r.res, fmt.Errorf("bench: %s: %w", name, err)
		}
	}
	r.finish()
	return r.res, nil
}

func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// appOptions configures a host of the run: cfg.Store is a SQLite path or a postgres:// DSN.
func appOptions(cfg Config, hub string) []reprise.Option {
	storeOpt := reprise.WithSQLiteFile(cfg.Store)
	if isPostgres(cfg.Store) {
		storeOpt = reprise.WithPostgres(cfg.Store)
	}
	opts := []reprise.Option{
		storeOpt,
		reprise.WithHub(hub),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithCacheSize(cfg.CacheSize),
		reprise.WithMaxConcurrentOrchestrations(cfg.Concurrency),
		reprise.WithMaxConcurrentActivities(cfg.Concurrency),
	}
	if cfg.Relaxed {
		opts = append(opts, reprise.WithRelaxedDurability())
	}
	if cfg.tracer != nil {
		opts = append(opts, reprise.WithTracerProvider(cfg.tracer))
	}
	if cfg.NoMetrics {
		opts = append(opts, reprise.WithoutMetrics())
	}
	return opts
}

// discardExporter counts the spans it is given and keeps none: the cost measured is the
// engine's and the SDK's, not a collector's.
type discardExporter struct{ n atomic.Int64 }

func (d *discardExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	d.n.Add(int64(len(spans)))
	return nil
}

func (d *discardExporter) Shutdown(context.Context) error { return nil }

// redact hides the password of a DSN in reports.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return dsn
}

// runner is one run's App and the counters the result is computed from.
type runner struct {
	cfg       Config
	app       *reprise.App
	res       Result
	start     time.Time
	orchDone  int
	actsDone  int
	opsDone   int // entity operations
	latencies []time.Duration

	activities atomic.Int64 // activity invocations this host ran

	tx           txCounter // the store's write transactions in the measured phase
	stopCounting func()    // nil when the store does not report its transactions
}

func (r *runner) progress(done int) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(done, r.cfg.N)
	}
}

func (r *runner) finish() {
	res := &r.res
	if res.Seconds > 0 {
		res.OrchestrationsPerSecond = float64(r.orchDone) / res.Seconds
		res.ActivitiesPerSecond = float64(r.actsDone) / res.Seconds
	}
	if r.orchDone > 0 {
		res.CPUMsPerOrchestration = res.CPUSeconds * 1000 / float64(r.orchDone)
	}
	if r.actsDone > 0 {
		res.CPUMsPerActivity = res.CPUSeconds * 1000 / float64(r.actsDone)
	}
	if r.opsDone > 0 && res.Seconds > 0 {
		res.EntityOperationsPerSecond = float64(r.opsDone) / res.Seconds
		res.CPUMsPerEntityOperation = res.CPUSeconds * 1000 / float64(r.opsDone)
	}
	res.Latency = percentiles(r.latencies)
	if r.stopCounting != nil {
		unit, steps := "activity", r.actsDone
		if steps == 0 && r.opsDone > 0 {
			unit, steps = "entity operation", r.opsDone
		}
		res.Transactions = r.tx.result(r.orchDone, unit, steps)
	}
}
