// Package metrics owns Reprise's OpenTelemetry instruments: one Metrics per host, made from the
// MeterProvider the host was given, with methods that the engine, the stores' writers and the
// gRPC server call at their hook points.
//
// A nil *Metrics records nothing, so that code with metrics off pays one nil test per hook.
// Names are in OpenTelemetry's dotted form with base units; the Prometheus exporter turns
// "reprise.activities" (a counter) into reprise_activities_total and "reprise.activity.duration"
// (unit s) into reprise_activity_duration_seconds. docs/observability.md lists what /metrics shows.
//
// Labels are names (of orchestrators, activities, entities), statuses, outcomes and kinds: never
// an instance ID. Attribute sets are built once per name and kept (see attrCache), so a hook
// costs an atomic add or a histogram bucket search and a map read, not an allocation.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of every Reprise instrument.
const ScopeName = "github.com/reprise-dev/reprise"

// Metrics holds the instruments of one host.
type Metrics struct {
	orchStarted   metric.Int64Counter
	orchCompleted metric.Int64Counter
	episodes      metric.Int64Counter
	episodeTime   metric.Float64Histogram
	replays       metric.Int64Counter
	replayEvents  metric.Int64Counter
	activities    metric.Int64Counter
	actWait       metric.Float64Histogram
	actTime       metric.Float64Histogram
	timers        metric.Int64Counter
	timerLate     metric.Float64Histogram
	retries       metric.Int64Counter
	leasesLost    metric.Int64Counter
	commitTime    metric.Float64Histogram
	batchSize     metric.Int64Histogram
	transactions  metric.Int64Counter
	streams       metric.Int64UpDownCounter
	entBatches    metric.Int64Counter
	entOps        metric.Int64Counter
	purged        metric.Int64Counter

	names  attrCache // name
	status attrCache // name + status or outcome
	final  attrCache // status alone (retention)
	kinds  [3]*attrs

	sums sums
}

// Outcomes of activities and entity operations.
const (
	Completed = "Completed"
	Failed    = "Failed"
)

// Kinds of work, as lease and backlog labels say them.
const (
	KindOrchestration = 0
	KindActivity      = 1
	KindEntity        = 2
)

var kindNames = [3]string{"orchestration", "activity", "entity"}

var kindSets = [3]attribute.Set{
	attribute.NewSet(attribute.String("kind", kindNames[0])),
	attribute.NewSet(attribute.String("kind", kindNames[1])),
	attribute.NewSet(attribute.String("kind", kindNames[2])),
}

// New makes the instruments from mp.
func New(mp metric.MeterProvider) (*Metrics, error) {
	m := &Metrics{}
	meter := mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	// Durations from a millisecond (an episode on a warm cache) to minutes (a slow activity).
	latency := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	m.orchStarted = counter("reprise.orchestrations.started", "{orchestration}", "Orchestration instances that ran their first episode, by orchestrator name.")
	m.orchCompleted = counter("reprise.orchestrations.completed", "{orchestration}", "Orchestrations that reached a final status (Completed, Failed, Terminated, Canceled), by name and status.")
	m.episodes = counter("reprise.episodes", "{episode}", "Orchestration episodes committed, by orchestrator name.")
	m.episodeTime = seconds("reprise.episode.duration", "Time from claiming an orchestration to committing its episode, by orchestrator name.", latency...)
	m.replays = counter("reprise.replays", "{replay}", "Episodes that replayed history because the execution was not cached (cache misses), by orchestrator name.")
	m.replayEvents = counter("reprise.replay.events", "{event}", "History events replayed on cache misses, by orchestrator name.")
	m.activities = counter("reprise.activities", "{activity}", "Activity executions whose result was recorded, by activity name and outcome.")
	m.actWait = seconds("reprise.activity.schedule_to_start", "Time from an activity's scheduling to its start, by activity name.", latency...)
	m.actTime = seconds("reprise.activity.duration", "Activity execution time, by activity name and outcome.", latency...)
	m.timers = counter("reprise.timers.fired", "{timer}", "Durable timers delivered to orchestrations.")
	m.timerLate = seconds("reprise.timer.lateness", "Time from a timer's due time to the episode that delivered it.", latency...)
	m.retries = counter("reprise.retries", "{retry}", "Activity attempts scheduled again by a retry policy, by activity name.")
	m.leasesLost = counter("reprise.leases.lost", "{lease}", "Commits refused because the lease had been lost, by kind of work.")
	m.commitTime = seconds("reprise.store.commit.duration", "Time of one store write transaction (its group of writes), from its start to its durable commit.",
		0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
	var err error
	m.batchSize, err = meter.Int64Histogram("reprise.store.commit.batch_size", metric.WithUnit("{write}"),
		metric.WithDescription("Writes (commits, claims, sends) grouped into one store transaction."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	errs = append(errs, err)
	m.transactions = counter("reprise.store.transactions", "{transaction}", "Store write transactions.")
	m.streams, err = meter.Int64UpDownCounter("reprise.grpc.streams.connected", metric.WithUnit("{stream}"),
		metric.WithDescription("Durable Task workers connected by GetWorkItems streams."))
	errs = append(errs, err)
	m.entBatches = counter("reprise.entity.batches", "{batch}", "Entity batches committed, by entity name.")
	m.entOps = counter("reprise.entity.operations", "{operation}", "Entity operations run in committed batches, by entity name and outcome.")
	m.purged = counter("reprise.retention.purged", "{orchestration}", "Finished instances purged by retention, by their final status.")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics: create instruments: %w", err)
	}
	for i, set := range kindSets {
		m.kinds[i] = newAttrs(set)
	}
	m.names.make = func(key [2]string) attribute.Set { return attribute.NewSet(attribute.String("name", key[0])) }
	m.final.make = func(key [2]string) attribute.Set { return attribute.NewSet(attribute.String("status", key[0])) }
	m.status.make = func(key [2]string) attribute.Set {
		return attribute.NewSet(attribute.String("name", key[0]), attribute.String("status", key[1]))
	}
	return m, nil
}

// attrCache keeps one attribute set per key (a name, or a name and a status). Names come from
// registrations and stored work, so the set is bounded by what the task hub runs; maxCached
// bounds it even so, after which sets are built per call. Lookups are of plain string-keyed maps
// under a read lock, which allocate nothing.
type attrCache struct {
	mu   sync.RWMutex
	m    map[string]map[string]*attrs
	n    int
	make func([2]string) attribute.Set
}

const maxCached = 10000

// attrs is an attribute set as the options of Add and Record, built once: passing a kept slice
// to a variadic call allocates nothing, where a fresh option would.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newAttrs(set attribute.Set) *attrs {
	o := metric.WithAttributeSet(set)
	return &attrs{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

func (c *attrCache) get(a, b string) *attrs {
	c.mu.RLock()
	o, ok := c.m[a][b]
	c.mu.RUnlock()
	if ok {
		return o
	}
	o = newAttrs(c.make([2]string{a, b}))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= maxCached {
		return o
	}
	if c.m == nil {
		c.m = map[string]map[string]*attrs{}
	}
	inner := c.m[a]
	if inner == nil {
		inner = map[string]*attrs{}
		c.m[a] = inner
	}
	if prev, ok := inner[b]; ok {
		return prev
	}
	inner[b] = o
	c.n++
	return o
}

var bg = context.Background()

// OrchestrationStarted counts an instance's first episode.
func (m *Metrics) OrchestrationStarted(name string) {
	if m == nil {
		return
	}
	m.orchStarted.Add(bg, 1, m.names.get(name, "").add...)
}

// OrchestrationCompleted counts an orchestration that reached the final status.
func (m *Metrics) OrchestrationCompleted(name, status string) {
	if m == nil {
		return
	}
	m.orchCompleted.Add(bg, 1, m.status.get(name, status).add...)
	if status == Failed {
		m.sums.failures.Add(1)
	} else {
		m.sums.completions.Add(1)
	}
}

// Episode records a committed episode and how long it took from its claim.
func (m *Metrics) Episode(name string, d time.Duration) {
	if m == nil {
		return
	}
	o := m.names.get(name, "")
	m.episodes.Add(bg, 1, o.add...)
	m.episodeTime.Record(bg, d.Seconds(), o.rec...)
}

// Replay records a cache miss that replayed events history events.
func (m *Metrics) Replay(name string, events int) {
	if m == nil {
		return
	}
	o := m.names.get(name, "")
	m.replays.Add(bg, 1, o.add...)
	m.replayEvents.Add(bg, int64(events), o.add...)
}

// Activity records an activity whose result was recorded: its outcome (Completed or Failed), the
// time it waited from its scheduling to its start, and its run time.
func (m *Metrics) Activity(name, outcome string, wait, run time.Duration) {
	if m == nil {
		return
	}
	o := m.status.get(name, outcome)
	m.activities.Add(bg, 1, o.add...)
	m.actTime.Record(bg, run.Seconds(), o.rec...)
	m.actWait.Record(bg, max(wait, 0).Seconds(), m.names.get(name, "").rec...)
	if outcome == Failed {
		m.sums.failures.Add(1)
	}
}

// TimerFired records a timer delivered late (how long after its due time).
func (m *Metrics) TimerFired(late time.Duration) {
	if m == nil {
		return
	}
	m.timers.Add(bg, 1)
	m.timerLate.Record(bg, max(late, 0).Seconds())
}

// Retry counts an activity attempt scheduled again by a retry policy.
func (m *Metrics) Retry(name string) {
	if m == nil {
		return
	}
	m.retries.Add(bg, 1, m.names.get(name, "").add...)
}

// Purged counts n finished instances of the final status purged by retention.
func (m *Metrics) Purged(status string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.purged.Add(bg, int64(n), m.final.get(status, "").add...)
}

// LeaseLost counts a commit refused for a lost lease; kind is KindOrchestration, KindActivity or
// KindEntity.
func (m *Metrics) LeaseLost(kind int) {
	if m == nil {
		return
	}
	m.leasesLost.Add(bg, 1, m.kinds[kind].add...)
}

// Transaction records one store write transaction of writes writes.
func (m *Metrics) Transaction(writes int, d time.Duration) {
	if m == nil {
		return
	}
	m.transactions.Add(bg, 1)
	m.batchSize.Record(bg, int64(writes))
	m.commitTime.Record(bg, d.Seconds())
}

// StreamConnected counts a worker stream in (+1) or out (-1).
func (m *Metrics) StreamConnected(delta int) {
	if m == nil {
		return
	}
	m.streams.Add(bg, int64(delta))
}

// EntityBatch records a committed entity batch of ok and failed operations.
func (m *Metrics) EntityBatch(name string, ok, failed int) {
	if m == nil {
		return
	}
	m.entBatches.Add(bg, 1, m.names.get(name, "").add...)
	if ok > 0 {
		m.entOps.Add(bg, int64(ok), m.status.get(name, Completed).add...)
	}
	if failed > 0 {
		m.entOps.Add(bg, int64(failed), m.status.get(name, Failed).add...)
		m.sums.failures.Add(int64(failed))
	}
}

// Backlog is what the backlog gauge reads at each collection.
type Backlog struct {
	Orchestration, Activity, Entity int
}

// ObserveBacklog registers the backlog gauge: read calls the store once per collection. It
// returns a function that unregisters it.
func (m *Metrics) ObserveBacklog(mp metric.MeterProvider, read func(ctx context.Context) (Backlog, error)) (func() error, error) {
	if m == nil {
		return func() error { return nil }, nil
	}
	meter := mp.Meter(ScopeName)
	g, err := meter.Int64ObservableGauge("reprise.backlog", metric.WithUnit("{item}"),
		metric.WithDescription("Work waiting now, by kind: visible inbox messages of orchestrations and of entities, activity tasks no worker holds."))
	if err != nil {
		return nil, fmt.Errorf("metrics: create the backlog gauge: %w", err)
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		b, err := read(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(g, int64(b.Orchestration), metric.WithAttributeSet(kindSets[KindOrchestration]))
		o.ObserveInt64(g, int64(b.Activity), metric.WithAttributeSet(kindSets[KindActivity]))
		o.ObserveInt64(g, int64(b.Entity), metric.WithAttributeSet(kindSets[KindEntity]))
		return nil
	}, g)
	if err != nil {
		return nil, fmt.Errorf("metrics: register the backlog gauge: %w", err)
	}
	return reg.Unregister, nil
}

// sums are running totals that the dashboard samples for its chart, kept beside the instruments
// so that it need not read them back through an exporter.
type sums struct {
	completions atomic.Int64 // orchestrations that reached a final status other than Failed
	failures    atomic.Int64 // failed orchestrations, activities and entity operations
}

// Totals are the running totals since the host started.
type Totals struct {
	Completions int64 // orchestrations finished in a status other than Failed
	Failures    int64 // orchestrations, activities and entity operations that failed
}

// Totals returns the running totals; zeros for a nil Metrics.
func (m *Metrics) Totals() Totals {
	if m == nil {
		return Totals{}
	}
	return Totals{Completions: m.sums.completions.Load(), Failures: m.sums.failures.Load()}
}
