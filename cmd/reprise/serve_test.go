package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
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
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi"
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
	return startServeWith(t, func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return run(ctx, args, stdout, stderr, func(string) string { return "" })
	}, args...)
}

// startServeWith is startServe with the function that runs the command line.
func startServeWith(t *testing.T, runFn func(ctx context.Context, args []string, stdout, stderr io.Writer) int, args ...string) *servedCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &servedCLI{stderr: &lockedBuffer{}}
	code := make(chan int, 1)
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}, args...)
	go func() {
		code <- runFn(ctx, args, pw, s.stderr)
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

func TestServeRefusesBadGRPCAddress(t *testing.T) {
	for _, addr := range []string{"nonsense", "127.0.0.1"} {
		r := runCLI(t, nil, "serve", "--grpc", addr, "--store", filepath.Join(t.TempDir(), "x.db"))
		if r.code != exitUsage || !strings.Contains(r.stderr, "--grpc") {
			t.Errorf("serve --grpc %s: exit %d, stderr %q; want a usage error naming --grpc", addr, r.code, r.stderr)
		}
	}
}

// TestServeKeyed runs `reprise serve` in the mode a public --grpc address gets (forced on
// loopback: tests reach loopback only): calls need the key that `reprise keys` prints.
func TestServeKeyed(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "keyed.db")
	srv := startServeWith(t, func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return serve(ctx, args[1:], stdout, stderr, func(string) string { return "" }, true)
	}, "--store", dbPath)
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err = client.Hello(ctx, &emptypb.Empty{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "reprise keys") {
		t.Fatalf("Hello without a key: %v; want UNAUTHENTICATED saying how to get a key", err)
	}
	_, err = client.StartInstance(metadata.AppendToOutgoingContext(ctx, grpcapi.KeyMetadata, "wrong"), &pb.CreateInstanceRequest{Name: "X", InstanceId: "k-1"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("StartInstance with a wrong key: %v; want UNAUTHENTICATED", err)
	}

	r := runCLI(t, nil, "keys", "--store", dbPath, "--json")
	var keys struct{ MasterKey, SystemKey string }
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || keys.MasterKey == "" || keys.SystemKey == "" {
		t.Fatalf("reprise keys: exit %d, %q, %v", r.code, r.stdout, err)
	}
	for _, key := range []string{keys.MasterKey, keys.SystemKey} {
		kctx := metadata.AppendToOutgoingContext(ctx, grpcapi.KeyMetadata, key)
		if _, err := client.Hello(kctx, &emptypb.Empty{}); err != nil {
			t.Errorf("Hello with a generated key: %v", err)
		}
	}
	kctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+keys.MasterKey)
	if _, err := client.StartInstance(kctx, &pb.CreateInstanceRequest{Name: "X", InstanceId: "k-1"}); err != nil {
		t.Fatalf("StartInstance with the master key as a bearer token: %v", err)
	}
	if got, err := client.GetInstance(kctx, &pb.GetInstanceRequest{InstanceId: "k-1"}); err != nil || !got.Exists {
		t.Fatalf("GetInstance with the master key: %v, %v", got, err)
	}
	code, stdout := srv.stop()
	if code != exitOK || !strings.Contains(stdout, "gRPC access: master or system key") {
		t.Errorf("reprise serve exit %d, stdout %q; want it to say gRPC needs a key", code, stdout)
	}
}

// TestServeOpenOnLoopback: the default mode says so at start.
func TestServeOpenOnLoopback(t *testing.T) {
	srv := startServe(t, "--store", filepath.Join(t.TempDir(), "open.db"))
	if _, stdout := srv.stop(); !strings.Contains(stdout, "gRPC access: no key (loopback only") {
		t.Errorf("stdout %q does not say gRPC runs without a key on loopback", stdout)
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

// TestServeCPUProfile: --cpuprofile FILE leaves a CPU profile in FILE once serve has stopped (a
// pprof file is gzip-compressed protobuf).
func TestServeCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "serve.pprof")
	srv := startServe(t, "--store", filepath.Join(dir, "serve.db"), "--cpuprofile", prof)
	if code, _ := srv.stop(); code != exitOK {
		t.Fatalf("serve exit %d\nstderr: %s", code, srv.stderr)
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("%s is not a profile (%d bytes, not gzip)", prof, len(data))
	}
	r := runCLI(t, nil, "serve", "--store", filepath.Join(dir, "other.db"), "--cpuprofile", filepath.Join(dir, "no", "such", "dir", "p"))
	if r.code != exitHostError || !strings.Contains(r.stderr, "--cpuprofile") {
		t.Errorf("an unwritable --cpuprofile: exit %d, stderr %q; want 1 naming the flag", r.code, r.stderr)
	}
}

// TestServeRefusesBadTLSFlags: a certificate without its key (or the other way), or a client CA
// without TLS, is a usage error; files that cannot be loaded stop serve with the reason.
func TestServeRefusesBadTLSFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	for _, args := range [][]string{{"--tls-cert", "c.pem"}, {"--tls-key", "k.pem"}, {"--tls-client-ca", "ca.pem"}} {
		r := runCLI(t, nil, append([]string{"serve", "--store", db}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--tls-") {
			t.Errorf("serve %v: exit %d, stderr %q; want a usage error naming the TLS flags", args, r.code, r.stderr)
		}
	}
	r := runCLI(t, nil, "serve", "--store", db, "--tls-cert", filepath.Join(t.TempDir(), "missing.pem"), "--tls-key", filepath.Join(t.TempDir(), "missing-key.pem"))
	if r.code != exitHostError || !strings.Contains(r.stderr, "TLS certificate") {
		t.Errorf("serve with missing TLS files: exit %d, stderr %q; want exit %d saying the certificate cannot be loaded", r.code, r.stderr, exitHostError)
	}
}
