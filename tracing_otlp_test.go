package reprise_test

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/reprise-dev/reprise"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each protobuf export request and keeps
// its spans, with the service name of their resource.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services map[string]bool
	bad      []string // requests it could not decode
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var export coltracepb.ExportTraceServiceRequest
	if err == nil && (req.Method != "POST" || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf") {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type")+": "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range export.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				r.services[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// With only the standard OTEL_* variables, the spans of a hello sequence reach an OTLP/HTTP
// receiver at Shutdown, in the caller's trace, with their parent links.
func TestTracesExportedOverOTLP(t *testing.T) {
	rcv := &otlpReceiver{services: map[string]bool{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "reprise-otlp-test")
	hello, seq := tracedHelloSequence(nil, nil)
	app := startApp(t, []reprise.Definition{hello, seq})
	startRoute(app)
	id := startTraced(t, app)
	if inst := waitDone(t, app.Client(), id); inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %v", inst.Status)
	}
	if err := app.Shutdown(testCtx(t)); err != nil { // flushes the batch span processor
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("undecodable export requests: %q", rcv.bad)
	}
	if !rcv.services["reprise-otlp-test"] {
		t.Errorf("service names %v, want OTEL_SERVICE_NAME's", rcv.services)
	}
	byID := map[string]*tracepb.Span{}
	for _, s := range rcv.spans {
		if got := hex.EncodeToString(s.TraceId); got != callerTrace {
			t.Errorf("span %s in trace %s, want the caller's", s.Name, got)
		}
		byID[string(s.SpanId)] = s
	}
	find := func(name string, kind tracepb.Span_SpanKind) []*tracepb.Span {
		var out []*tracepb.Span
		for _, s := range rcv.spans {
			if s.Name == name && s.Kind == kind {
				out = append(out, s)
			}
		}
		return out
	}
	parentName := func(s *tracepb.Span) string {
		if p, ok := byID[string(s.ParentSpanId)]; ok {
			return p.Name + "/" + p.Kind.String()
		}
		return hex.EncodeToString(s.ParentSpanId)
	}
	creates := find("create_orchestration:HelloSequence", tracepb.Span_SPAN_KIND_PRODUCER)
	orchs := find("orchestration:HelloSequence", tracepb.Span_SPAN_KIND_SERVER)
	clients := find("activity:SayHello", tracepb.Span_SPAN_KIND_CLIENT)
	servers := find("activity:SayHello", tracepb.Span_SPAN_KIND_SERVER)
	if len(creates) != 1 || len(orchs) != 1 || len(clients) != 3 || len(servers) != 3 {
		t.Fatalf("%d create, %d orchestration, %d CLIENT and %d SERVER activity spans received (of %d), want 1, 1, 3, 3",
			len(creates), len(orchs), len(clients), len(servers), len(rcv.spans))
	}
	if got := hex.EncodeToString(creates[0].ParentSpanId); got != callerSpan {
		t.Errorf("create_orchestration's parent %s, want the caller's %s", got, callerSpan)
	}
	if !bytes.Equal(orchs[0].ParentSpanId, creates[0].SpanId) {
		t.Errorf("orchestration's parent %s, want create_orchestration", parentName(orchs[0]))
	}
	for _, c := range clients {
		if !bytes.Equal(c.ParentSpanId, orchs[0].SpanId) {
			t.Errorf("CLIENT activity span's parent %s, want the orchestration span", parentName(c))
		}
	}
	under := map[string]int{}
	for _, s := range servers {
		under[string(s.ParentSpanId)]++
		if p := byID[string(s.ParentSpanId)]; p == nil || p.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("SERVER activity span's parent %s, want a CLIENT activity span", parentName(s))
		}
	}
	if len(under) != 3 {
		t.Errorf("SERVER activity spans under %d distinct CLIENT spans, want 3", len(under))
	}
	if n := len(find("user-work:Tokyo", tracepb.Span_SPAN_KIND_INTERNAL)); n != 1 {
		t.Errorf("%d user spans of the first activity received, want 1", n)
	}
}
