package reprise

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/tracing"
)

// WithTracerProvider emits the spans of durable work (orchestrations, activities, timers,
// starts, raised events and entity signals, named as the Durable Task SDKs name them) to tp.
// Without it, the App builds an OTLP exporter when the standard OTEL_TRACES_EXPORTER or
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables ask for one, and emits nothing otherwise.
//
// An orchestration's span covers all its episodes, possibly on several hosts, and is emitted
// when it ends, with the span ID its children already name as parent. An SDK provider built
// with sdktrace.WithIDGenerator(TraceIDGenerator()) gives it that ID; with any other provider
// the App parents activities to the orchestration's caller instead (see docs/observability.md).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// TraceIDGenerator returns the ID generator to build an SDK TracerProvider for
// WithTracerProvider with: random IDs, except for the orchestration spans, which get the IDs
// fixed when their execution started.
func TraceIDGenerator() sdktrace.IDGenerator { return tracing.IDs() }

// requestTraced returns the request with the span context of its W3C traceparent (and
// tracestate) header as its context's remote parent, so that what the handler starts joins the
// caller's trace; unchanged without the header, or when its context carries a span already
// (the user's own middleware, such as otelhttp, made one).
func requestTraced(r *http.Request) *http.Request {
	if r.Header.Get("traceparent") == "" || trace.SpanContextFromContext(r.Context()).IsValid() {
		return r
	}
	return r.WithContext(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
}

// tracerFromEnv builds the tracer provider the OTEL_* variables ask for: nil (tracing off) when
// they ask for none. The returned shutdown flushes and stops it.
func tracerFromEnv(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return nil, nil, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil, nil
		}
	case "none":
		return nil, nil, nil
	case "otlp":
	default:
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Reprise builds only the otlp exporter; set it to otlp or none, or give the App a provider with WithTracerProvider", exp)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("building the OTLP trace exporter from the OTEL_* variables: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.Environment())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, nil, fmt.Errorf("reading OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(tracing.IDs()))
	return tp, tp.Shutdown, nil
}

// start starts an instance under a create_orchestration span, a child of the span in ctx (the
// caller's, or the traceparent of the HTTP request that asked), and stores the trace context
// with the instance: its orchestration span joins the caller's trace. With tracing off the
// caller's span context itself is stored, for activities' own spans to join.
func (a *App) start(ctx context.Context, p *control.Plane, r control.StartRequest) (string, error) {
	if r.Version == "" {
		r.Version = a.defaultVersion() // every new instance the App starts, by whatever route
	}
	if !a.tracer.On() {
		r.Trace = tracing.FromContext(ctx)
		return p.Start(ctx, r)
	}
	if r.InstanceID == "" {
		r.InstanceID = control.NewID()
	}
	ctx, span := a.tracer.StartCreate(ctx, r.Name, r.InstanceID)
	r.Trace = tracing.FromContext(ctx)
	id, err := p.Start(ctx, r)
	tracing.End(span, err)
	return id, err
}
