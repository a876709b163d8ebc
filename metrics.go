package reprise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/reprise-dev/reprise/internal/localguard"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

// MetricsPath is where the host serves its metrics in the Prometheus text format.
const MetricsPath = "/metrics"

// WithMeterProvider sends the App's metrics to mp, a MeterProvider of your own (with the
// exporters and readers you chose), instead of the one the App makes for /metrics. /metrics then
// answers 404: read the metrics where your provider sends them. The App does not shut mp down.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithoutMetrics turns the metrics off (they are on by default; REPRISE_METRICS=off does the
// same): no instruments, no /metrics, no HTTP instrumentation.
func WithoutMetrics() Option { return func(c *config) { c.metricsOff, c.metricsSet = true, true } }

// WithMetricsListener also serves /metrics, without a key, on a listener of its own at addr (for
// example 127.0.0.1:9464), for a Prometheus server that holds no key. The address is the
// operator's choice: on a loopback address only this machine can scrape it, and pages of other
// sites cannot (the local guard); on another address anyone who reaches it can read the metrics,
// which hold orchestrator, activity and entity names but no instance IDs or payloads.
// REPRISE_METRICS_ADDR sets it too.
func WithMetricsListener(addr string) Option { return func(c *config) { c.metricsAddr = addr } }

// hostMetrics is what an App with metrics on keeps from Start to Shutdown.
type hostMetrics struct {
	m        *metrics.Metrics
	provider metric.MeterProvider
	own      *sdkmetric.MeterProvider // the App's own provider, shut down with it; nil with WithMeterProvider
	scrape   http.Handler             // the Prometheus handler of own; nil with WithMeterProvider
	http     http.Handler             // the App's mux under the standard HTTP instrumentation
	stop     []func() error           // the backlog gauge, the store's observer
	server   *http.Server             // WithMetricsListener's
	addr     net.Addr
	recent   *metrics.Recent // the dashboard's chart
}

// The dashboard's chart: a sample every liveInterval, the last liveSamples of them (5 minutes).
const (
	liveInterval = 5 * time.Second
	liveSamples  = 60
)

// startMetrics makes the instruments, registers the backlog gauge on st and starts the metrics
// listener, when metrics are on; nil, nil when they are off.
func (a *App) startMetrics(cfg *config, st store.Store) (*hostMetrics, error) {
	if cfg.metricsOff {
		return nil, nil
	}
	h := &hostMetrics{provider: cfg.meterProvider}
	if h.provider == nil {
		// A registry of the App's own, not Prometheus' global one: two Apps in one process (tests,
		// a host and a sidecar) keep their numbers apart.
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		if err != nil {
			return nil, fmt.Errorf("reprise: create the Prometheus exporter of /metrics: %w", err)
		}
		h.own = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		h.provider = h.own
		h.scrape = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	var err error
	if h.m, err = metrics.New(h.provider); err != nil {
		return nil, err
	}
	backlog := func(ctx context.Context) (metrics.Backlog, error) {
		b, err := st.Backlog(ctx)
		return metrics.Backlog{Orchestration: b.OrchestrationMessages, Activity: b.ActivityTasks, Entity: b.EntityMessages}, err
	}
	unregister, err := h.m.ObserveBacklog(h.provider, backlog)
	if err != nil {
		return nil, err
	}
	h.stop = append(h.stop, unregister)
	h.recent = h.m.StartRecent(liveInterval, liveSamples, backlog)
	h.stop = append(h.stop, func() error { h.recent.Stop(); return nil })
	if obs, ok := st.(store.TransactionObserver); ok {
		m := h.m
		remove := obs.ObserveTransactions(func(t store.Transaction) { m.Transaction(t.Writes, t.Duration) })
		h.stop = append(h.stop, func() error { remove(); return nil })
	}
	// Metrics only: the request spans, if any, are the tracing's business.
	h.http = otelhttp.NewHandler(a.mux, "reprise", otelhttp.WithMeterProvider(h.provider),
		otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()))
	if cfg.metricsAddr != "" {
		if err := h.listen(cfg.metricsAddr, a.guard); err != nil {
			_ = h.shutdown(context.Background())
			return nil, err
		}
	}
	return h, nil
}

// listen serves the scrape handler without a key on addr.
func (h *hostMetrics) listen(addr string, guard *localguard.Guard) error {
	if h.scrape == nil {
		return errors.New("reprise: WithMetricsListener (REPRISE_METRICS_ADDR) serves the App's own metrics, " +
			"and WithMeterProvider sends them elsewhere: use one or the other")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("reprise: listen for metrics on %s (REPRISE_METRICS_ADDR or WithMetricsListener): %w", addr, err)
	}
	scrape := h.scrape
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		// As for the host's anonymous routes: on a loopback address, keep web pages out.
		if localguard.IsLoopbackConn(r) && !guardKeyless(w, r, guard) {
			return
		}
		scrape.ServeHTTP(w, r)
	})
	h.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnContext: localguard.Peer}
	h.addr = ln.Addr()
	go func() { _ = h.server.Serve(ln) }()
	return nil
}

// shutdown stops the listener, the gauge and the store's observer, and the App's own provider.
func (h *hostMetrics) shutdown(ctx context.Context) error {
	var errs []error
	if h.server != nil {
		errs = append(errs, h.server.Shutdown(ctx))
	}
	for _, stop := range h.stop {
		errs = append(errs, stop())
	}
	if h.own != nil {
		errs = append(errs, h.own.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// serveHTTP is the App's handler: the mux, under the HTTP instrumentation while metrics run.
func (a *App) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if h := a.instrumented.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// mountMetrics serves /metrics: the master key unless the management API is anonymous (then the
// local guard, as for the dashboard); 404 when metrics are off or go to the user's provider.
func (a *App) mountMetrics() {
	a.mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		h, running, keys, guard := a.metrics, a.eng != nil && !a.stopped, a.keys, a.guard
		a.mu.Unlock()
		if !running {
			writeMessage(w, http.StatusServiceUnavailable, "the app is not running: it has not started or is shutting down")
			return
		}
		if keys.anonMgmt && !guardKeyless(w, r, guard) {
			return
		}
		if !keys.admin(r) {
			writeMessage(w, http.StatusUnauthorized, "/metrics needs the master key (x-functions-key header or code query parameter; "+
				"`reprise keys` prints it), or serve it without a key on a listener of its own (REPRISE_METRICS_ADDR, WithMetricsListener)")
			return
		}
		switch {
		case h == nil:
			writeMessage(w, http.StatusNotFound, "metrics are off (WithoutMetrics or REPRISE_METRICS=off)")
		case h.scrape == nil:
			writeMessage(w, http.StatusNotFound, "metrics go to the MeterProvider given with WithMeterProvider, not to /metrics")
		default:
			h.scrape.ServeHTTP(w, r)
		}
	})
}

// MeterProvider returns the MeterProvider the App's metrics are recorded with (its own, or the
// one given with WithMeterProvider), for servers beside it that add to the same metrics (package
// sidecar); nil when metrics are off or before Start.
func (a *App) MeterProvider() metric.MeterProvider {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metrics == nil {
		return nil
	}
	return a.metrics.provider
}

// MetricsAddr returns the address of the metrics listener (WithMetricsListener), nil without one.
func (a *App) MetricsAddr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.metrics == nil {
		return nil
	}
	return a.metrics.addr
}

// live is the dashboard's Options.Live.
func (a *App) live() ([]metrics.Sample, float64) {
	a.mu.Lock()
	h := a.metrics
	a.mu.Unlock()
	if h == nil {
		return nil, 0
	}
	return h.recent.Samples(), h.recent.Interval().Seconds()
}
