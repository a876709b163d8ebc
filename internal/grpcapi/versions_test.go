package grpcapi

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
)

// What an SDK sends with a start: a version, tags and the caller's trace context.
var sentTags = map[string]string{"team": "payments", "région": "eu-ouest", "quote\"": "{\"json\":true}"}

// The SDKs still fill the deprecated spanID.
//
//lint:ignore SA1019 the test sends what the SDKs send
var sentTrace = &pb.TraceContext{TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", SpanID: "b7ad6b7169203331", TraceState: wrapperspb.String("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")}

// wantLabels checks the version and tags of an OrchestrationState.
func wantLabels(t *testing.T, what string, s *pb.OrchestrationState, version string, tags map[string]string) {
	t.Helper()
	if got := s.GetVersion().GetValue(); got != version {
		t.Errorf("%s: version %q, want %q", what, got, version)
	}
	if version == "" && s.GetVersion() != nil {
		t.Errorf("%s: version set (empty), want absent", what)
	}
	if !maps.Equal(s.GetTags(), tags) {
		t.Errorf("%s: tags %v, want %v", what, s.GetTags(), tags)
	}
}

// streamHistory returns the events StreamInstanceHistory sends for the instance.
func (h *hub) streamHistory(t *testing.T, id string) []*pb.HistoryEvent {
	t.Helper()
	stream, err := h.client.StreamInstanceHistory(callContext(t), &pb.StreamInstanceHistoryRequest{InstanceId: id})
	if err != nil {
		t.Fatal(err)
	}
	var events []*pb.HistoryEvent
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			return events
		}
		if err != nil {
			t.Fatalf("StreamInstanceHistory %q: %v", id, err)
		}
		events = append(events, chunk.Events...)
	}
}

// testVersionTagsTrace: StartInstance keeps the version, tags and trace context; every read of
// the instance returns the version and tags, and its history hands all three to a worker.
func testVersionTagsTrace(t *testing.T, h *hub) {
	ctx := callContext(t)
	_, err := h.client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Wait", InstanceId: "labelled",
		Version: wrapperspb.String("1.2.0"), Tags: sentTags, ParentTraceContext: sentTrace})
	if err != nil {
		t.Fatalf("StartInstance with version, tags and trace context: %v", err)
	}
	h.start(t, "Wait", "plain", "")

	res, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "labelled"})
	if err != nil || !res.Exists {
		t.Fatalf("GetInstance: %v, %v", res, err)
	}
	wantLabels(t, "GetInstance", res.OrchestrationState, "1.2.0", sentTags)
	res, err = h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "plain", GetInputsAndOutputs: true})
	if err != nil || !res.Exists {
		t.Fatalf("GetInstance: %v, %v", res, err)
	}
	wantLabels(t, "GetInstance of an instance without them", res.OrchestrationState, "", nil)

	started, err := h.client.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: "labelled"})
	if err != nil || !started.Exists {
		t.Fatalf("WaitForInstanceStart: %v, %v", started, err)
	}
	wantLabels(t, "WaitForInstanceStart", started.OrchestrationState, "1.2.0", sentTags)

	for _, fetch := range []bool{false, true} {
		q, err := h.client.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{
			InstanceIdPrefix: wrapperspb.String("labelled"), FetchInputsAndOutputs: fetch}})
		if err != nil || len(q.OrchestrationState) != 1 {
			t.Fatalf("QueryInstances: %v, %v", q, err)
		}
		wantLabels(t, "QueryInstances", q.OrchestrationState[0], "1.2.0", sentTags)
	}

	// The worker's view: ExecutionStarted carries all three.
	if _, err := h.client.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "labelled", Name: "go", Input: wrapperspb.String(`"now"`)}); err != nil {
		t.Fatal(err)
	}
	done := h.complete(t, "labelled")
	wantLabels(t, "WaitForInstanceCompletion (after the episodes' commits)", done, "1.2.0", sentTags)
	var start *pb.ExecutionStartedEvent
	for _, e := range h.streamHistory(t, "labelled") {
		if x, ok := e.EventType.(*pb.HistoryEvent_ExecutionStarted); ok {
			start = x.ExecutionStarted
		}
	}
	if start == nil {
		t.Fatal("no ExecutionStarted in the history")
	}
	if start.GetVersion().GetValue() != "1.2.0" || !maps.Equal(start.Tags, sentTags) || !proto.Equal(start.ParentTraceContext, sentTrace) {
		t.Errorf("ExecutionStarted: version %v, tags %v, trace %v; want 1.2.0, %v, %v", start.Version, start.Tags, start.ParentTraceContext, sentTags, sentTrace)
	}

	// A restart keeps the version and tags.
	re, err := h.client.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: "labelled", RestartWithNewInstanceId: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: re.InstanceId})
	if err != nil || !res.Exists {
		t.Fatalf("GetInstance of the restarted instance: %v, %v", res, err)
	}
	wantLabels(t, "restarted instance", res.OrchestrationState, "1.2.0", sentTags)
}

func TestStartKeepsVersionTagsTrace(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testVersionTagsTrace(t, sqliteHub(t)) })
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{Hub: "default"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		testVersionTagsTrace(t, newHub(t, st))
	})
}

func TestStartRefusesBadVersionTagsTrace(t *testing.T) {
	h := sqliteHub(t)
	ctx := callContext(t)
	for _, c := range []struct {
		what string
		r    *pb.CreateInstanceRequest
	}{
		{"a version with NUL", &pb.CreateInstanceRequest{Version: wrapperspb.String("1\x00")}},
		{"a version too long", &pb.CreateInstanceRequest{Version: wrapperspb.String(strings.Repeat("1", control.MaxVersionBytes+1))}},
		{"a tag with NUL", &pb.CreateInstanceRequest{Tags: map[string]string{"k\x00": "v"}}},
		{"tags too large", &pb.CreateInstanceRequest{Tags: map[string]string{"k": strings.Repeat("v", store.MaxTagsBytes)}}},
		{"a traceparent with NUL", &pb.CreateInstanceRequest{ParentTraceContext: &pb.TraceContext{TraceParent: "00-\x00"}}},
		{"a tracestate too long", &pb.CreateInstanceRequest{ParentTraceContext: &pb.TraceContext{
			TraceParent: sentTrace.TraceParent, TraceState: wrapperspb.String(strings.Repeat("a", control.MaxTraceBytes+1))}}},
	} {
		c.r.Name, c.r.InstanceId = "Echo", "refused"
		_, err := h.client.StartInstance(ctx, c.r)
		wantCode(t, "StartInstance with "+c.what, err, codes.InvalidArgument)
	}
	if res, err := h.client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "refused"}); err != nil || res.Exists {
		t.Errorf("a refused start created the instance: %v, %v", res, err)
	}
}

// TestHistoryEventLabels: the events that carry a version, tags and trace context (the start,
// an activity's scheduling, a sub-orchestration's creation) hand them on as stored, and leave
// them absent when there are none.
func TestHistoryEventLabels(t *testing.T) {
	now := time.Now().UTC()
	trace := &history.TraceContext{TraceParent: sentTrace.TraceParent, TraceState: "congo=t61rcWkgMzE", SpanID: "b7ad6b7169203331"}
	//lint:ignore SA1019 the stored span ID goes back in the deprecated field
	wantTrace := &pb.TraceContext{TraceParent: trace.TraceParent, TraceState: wrapperspb.String(trace.TraceState), SpanID: trace.SpanID}
	tags := map[string]string{"k": "v"}
	type labels interface {
		GetVersion() *wrapperspb.StringValue
		GetTags() map[string]string
		GetParentTraceContext() *pb.TraceContext
	}
	of := func(h *pb.HistoryEvent) labels {
		switch x := h.EventType.(type) {
		case *pb.HistoryEvent_ExecutionStarted:
			return x.ExecutionStarted
		case *pb.HistoryEvent_TaskScheduled:
			return x.TaskScheduled
		case *pb.HistoryEvent_SubOrchestrationInstanceCreated:
			return x.SubOrchestrationInstanceCreated
		}
		t.Fatalf("unexpected event %v", h)
		return nil
	}
	for _, typ := range []history.Type{history.ExecutionStarted, history.TaskScheduled, history.SubOrchestrationInstanceCreated} {
		ev := history.New(typ, now)
		ev.Name, ev.InstanceID = "N", "child"
		plain, err := historyEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if l := of(plain); l.GetVersion() != nil || len(l.GetTags()) != 0 || l.GetParentTraceContext() != nil {
			t.Errorf("%s without labels: version %v, tags %v, trace %v; want all absent", typ, l.GetVersion(), l.GetTags(), l.GetParentTraceContext())
		}
		ev.Version, ev.Tags, ev.Trace = "3.1", tags, trace
		got, err := historyEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if l := of(got); l.GetVersion().GetValue() != "3.1" || !maps.Equal(l.GetTags(), tags) || !proto.Equal(l.GetParentTraceContext(), wantTrace) {
			t.Errorf("%s: version %v, tags %v, trace %v; want 3.1, %v, %v", typ, l.GetVersion(), l.GetTags(), l.GetParentTraceContext(), tags, wantTrace)
		}
	}
	// The proto's trace context and the stored one map onto each other both ways.
	if back := traceToProto(traceFromProto(sentTrace)); !proto.Equal(back, sentTrace) {
		t.Errorf("trace context round trip: %v, want %v", back, sentTrace)
	}
	if traceFromProto(nil) != nil || traceToProto(nil) != nil {
		t.Error("an absent trace context became one")
	}
}
