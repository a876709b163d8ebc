package sidecar

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// sumOf collects rm's int64 sum (counter or up-down counter) name, over the data points whose
// attributes include want.
func sumOf(t *testing.T, reader sdkmetric.Reader, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want an int64 sum", name, m.Data)
			}
		points:
			for _, p := range sum.DataPoints {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue points
					}
				}
				total += p.Value
			}
		}
	}
	return total
}

// TestMetricsOfRemoteWork: with a MeterProvider of the user's (WithMeterProvider), a worker
// stream is counted while it is connected, and the activity it ran is counted with the App's.
func TestMetricsOfRemoteWork(t *testing.T) {
	goSeq := reprise.NewOrchestrator("GoSeq", func(ctx *reprise.OrchestrationContext, in string) (string, error) {
		return reprise.CallActivity[string](ctx, "remote-only", in+"!").Await()
	})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "app.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)), reprise.WithMeterProvider(mp))
	app.Register(goSeq)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	srv := listen(t, app, Options{})

	if n := sumOf(t, reader, "reprise.grpc.streams.connected"); n != 0 {
		t.Fatalf("streams connected before any = %d", n)
	}
	ctx, client, stream := openStream(t, srv)
	if n := sumOf(t, reader, "reprise.grpc.streams.connected"); n != 1 {
		t.Errorf("streams connected with one open = %d, want 1", n)
	}
	id, err := app.Client().StartNew(ctx, "GoSeq", "hi")
	if err != nil {
		t.Fatal(err)
	}
	var item *pb.WorkItem
	for item == nil || item.GetHealthPing() != nil {
		if item, err = stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	act := item.GetActivityRequest()
	if act == nil {
		t.Fatalf("the worker got %v, want an activity", item)
	}
	if _, err := client.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: id, TaskId: act.TaskId,
		Result: wrapperspb.String(`"from the worker"`), CompletionToken: item.CompletionToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Client().WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	remote := attribute.String("name", "remote-only")
	deadline := time.Now().Add(10 * time.Second)
	for sumOf(t, reader, "reprise.orchestrations.completed", attribute.String("name", "GoSeq")) != 1 ||
		sumOf(t, reader, "reprise.activities", remote, attribute.String("status", "Completed")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the App's orchestration and the stream's activity were not both counted once")
		}
		time.Sleep(10 * time.Millisecond) // counted just after the commits the client sees
	}
}
