package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/pgtest"
)

// lockedBuffer is a bytes.Buffer that the server's logger and the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// servedCLI is a running `reprise serve`.
type servedCLI struct {
	grpcAddr, httpURL string
	stderr            *lockedBuffer
	stop              func() (code int, stdout string)
}

// startServe runs `reprise serve` in this process on free loopback ports and returns once it
// has printed its addresses.
func startServe(t *testing.T, args ...string) *servedCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &servedCLI{stderr: &lockedBuffer{}}
	code := make(chan int, 1)
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}, args...)
	go func() {
		code <- run(ctx, args, pw, s.stderr, func(string) string { return "" })
		pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for (s.grpcAddr == "" || s.httpURL == "") && sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if a, ok := strings.CutPrefix(line, "gRPC (Durable Task SDKs): "); ok {
			s.grpcAddr = a
		}
		if u, ok := strings.CutPrefix(line, "HTTP (management API, dashboard): "); ok {
			s.httpURL = u
		}
	}
	if s.grpcAddr == "" || s.httpURL == "" {
		cancel()
		t.Fatalf("reprise serve printed no addresses (exit %d): %s\nstderr: %s", <-code, out.String(), s.stderr)
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		rest <- string(b)
	}()
	var once sync.Once
	var c int
	var stdout string
	s.stop = func() (int, string) {
		once.Do(func() {
			cancel()
			c = <-code
			stdout = out.String() + <-rest
		})
		return c, stdout
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// TestServe drives `reprise serve` over gRPC and sees the same instances over the management
// API, then stops it as a signal would.
func TestServe(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "serve.db")
	srv := startServe(t, "--store", dbPath)
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// No worker has the orchestrator: the instance is accepted and waits, Pending.
	res, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "HelloCities", InstanceId: "serve-1", Input: wrapperspb.String(`["Tokyo"]`)})
	if err != nil || res.InstanceId != "serve-1" {
		t.Fatalf("StartInstance: %v, %v", res, err)
	}
	got, err := client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "serve-1", GetInputsAndOutputs: true})
	if err != nil || !got.Exists || got.OrchestrationState.Name != "HelloCities" ||
		got.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING ||
		got.OrchestrationState.GetInput().GetValue() != `["Tokyo"]` {
		t.Fatalf("GetInstance: %v, %v", got, err)
	}

	// The management API (its loopback base, keyless for this machine) shows the same instance.
	httpStatus := func(id string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(srv.httpURL + "/durabletask/instances/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := httpStatus("serve-1"); code != http.StatusAccepted && code != http.StatusOK ||
		body["name"] != "HelloCities" || body["runtimeStatus"] != "Pending" {
		t.Errorf("management API: %d %v, want the Pending instance HelloCities", code, body)
	}

	if _, err := client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "serve-1", Output: wrapperspb.String(`"stop"`)}); err != nil {
		t.Fatalf("TerminateInstance: %v", err)
	}
	// The termination waits in the instance's inbox for a host that has the orchestrator, so
	// the instance is still active.
	_, err = client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "serve-1"}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("PurgeInstances of the active instance: %v, want FAILED_PRECONDITION", err)
	}
	// Until gRPC workers are served, a Go host on the same store plays the worker.
	worker := reprise.NewApp(reprise.WithSQLiteFile(dbPath), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	worker.Register(reprise.NewOrchestrator("HelloCities", func(ctx *reprise.OrchestrationContext, cities []string) (int, error) {
		_, err := reprise.WaitForEvent[string](ctx, "never", 0).Await()
		return len(cities), err
	}))
	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer worker.Shutdown(context.Background())
	_, err = client.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "no-such-instance"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("TerminateInstance of an unknown instance: %v, want NOT_FOUND", err)
	}
	wait, err := client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "serve-1", GetInputsAndOutputs: true})
	if err != nil || wait.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED ||
		wait.OrchestrationState.GetOutput().GetValue() != `"stop"` {
		t.Fatalf("WaitForInstanceCompletion after terminate: %v, %v", wait, err)
	}
	if _, body := httpStatus("serve-1"); body["runtimeStatus"] != "Terminated" {
		t.Errorf("management API after terminate: %v", body)
	}

	pr, err := client.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "serve-1"}})
	if err != nil || pr.DeletedInstanceCount != 1 {
		t.Fatalf("PurgeInstances: %v, %v", pr, err)
	}
	if code, _ := httpStatus("serve-1"); code != http.StatusNotFound {
		t.Errorf("management API after purge: %d, want 404", code)
	}

	if code, stdout := srv.stop(); code != exitOK || !strings.Contains(stdout, "reprise serve: stopped") {
		t.Errorf("reprise serve stopped with %d: %s\nstderr: %s", code, stdout, srv.stderr)
	}
	if _, err := client.Hello(ctx, nil); err == nil {
		t.Error("Hello after the server stopped: no error")
	}
}

func TestServeRefusesNonLoopbackGRPC(t *testing.T) {
	for _, addr := range []string{":4001", "0.0.0.0:4001", "192.0.2.1:4001", "example.com:4001", "nonsense"} {
		r := runCLI(t, nil, "serve", "--grpc", addr, "--store", filepath.Join(t.TempDir(), "x.db"))
		if r.code != exitUsage || !strings.Contains(r.stderr, "--grpc") {
			t.Errorf("serve --grpc %s: exit %d, stderr %q; want a usage error naming --grpc", addr, r.code, r.stderr)
		}
	}
}

// TestServePostgres: `reprise serve` on a postgres:// store serves the same instances over gRPC
// and HTTP.
func TestServePostgres(t *testing.T) {
	srv := startServe(t, "--store", pgtest.DSN(t), "--hub", "ServeHub")
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "taskhub", "ServeHub"), 30*time.Second)
	defer cancel()
	if _, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "HelloCities", InstanceId: "pg-1"}); err != nil {
		t.Fatalf("StartInstance: %v", err)
	}
	got, err := client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "pg-1"})
	if err != nil || !got.Exists || got.OrchestrationState.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING {
		t.Fatalf("GetInstance: %v, %v", got, err)
	}
	resp, err := http.Get(srv.httpURL + "/durabletask/instances/pg-1")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body["name"] != "HelloCities" || body["runtimeStatus"] != "Pending" {
		t.Errorf("management API: %d %v", resp.StatusCode, body)
	}
	if code, stdout := srv.stop(); code != exitOK {
		t.Errorf("reprise serve stopped with %d: %s\nstderr: %s", code, stdout, srv.stderr)
	}
}
