// Package durabletaskgo checks `reprise serve` against the Go Durable Task SDK,
// github.com/microsoft/durabletask-go: its client (client.TaskHubGrpcClient) on the control
// RPCs here, its worker (client.StartWorkItemListener) on the worker RPCs in worker_test.go.
package durabletaskgo

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// binaries builds the reprise CLI and ./host into a temporary directory and returns it.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "github.com/reprise-dev/reprise/cmd/reprise", "./host")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the reprise CLI and ./host failed: %v\n%s", err, out)
	}
	return dir
}

// start starts bin with args and returns the first line of its stdout that has prefix, without
// the prefix. The process's stdin is a pipe that is closed, and the process interrupted, when the
// test ends.
func start(t *testing.T, prefix, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		// SIGINT, as Ctrl-C: serve shuts down in order and closes the store.
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(bin), stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			// Keep reading so that the process never blocks on a full pipe.
			go func() {
				for sc.Scan() {
				}
			}()
			return rest
		}
	}
	t.Fatalf("%s printed no line %q", filepath.Base(bin), prefix)
	return ""
}

// grpcCode is the gRPC status code under the SDK's wrapping of err.
func grpcCode(err error) codes.Code {
	var s interface{ GRPCStatus() *status.Status }
	if errors.As(err, &s) {
		return s.GRPCStatus().Code()
	}
	return status.Code(err)
}

// TestClient runs the durabletask-go client against `reprise serve`: schedule, fetch, wait,
// raise, terminate, purge, and unknown IDs. No SDK worker runs here (worker_test.go has them):
// ./host, a Go App on the same store, runs the orchestrator "Approval"; nothing has "Unowned",
// whose instances stay Pending.
func TestClient(t *testing.T) {
	bin := binaries(t)
	store := filepath.Join(t.TempDir(), "serve.db")
	addr := start(t, "gRPC (Durable Task SDKs): ", filepath.Join(bin, "reprise"), "serve", "--store", store, "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0")
	start(t, "ready", filepath.Join(bin, "host"), "--store", store)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := client.NewTaskHubGrpcClient(conn, backend.DefaultLogger())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	id, err := c.ScheduleNewOrchestration(ctx, "Unowned", api.WithInstanceID("go-pending"), api.WithInput(map[string]any{"cities": []string{"Tokyo"}}))
	if err != nil {
		t.Fatalf("ScheduleNewOrchestration: %v", err)
	}
	if id != "go-pending" {
		t.Fatalf("ScheduleNewOrchestration returned ID %q, want go-pending", id)
	}

	m, err := c.FetchOrchestrationMetadata(ctx, id)
	if err != nil {
		t.Fatalf("FetchOrchestrationMetadata: %v", err)
	}
	if m.InstanceID != id || m.Name != "Unowned" || m.RuntimeStatus != api.RUNTIME_STATUS_PENDING {
		t.Errorf("metadata: ID %q, name %q, status %v; want go-pending, Unowned, PENDING", m.InstanceID, m.Name, m.RuntimeStatus)
	}
	if m.SerializedInput != `{"cities":["Tokyo"]}` {
		t.Errorf("input %q, want {\"cities\":[\"Tokyo\"]}", m.SerializedInput)
	}
	if m.CreatedAt.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("createdAt %v is not recent", m.CreatedAt)
	}

	if _, err := c.FetchOrchestrationMetadata(ctx, "no-such-instance"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("FetchOrchestrationMetadata of an unknown ID: %v, want api.ErrInstanceNotFound", err)
	}

	if err := c.RaiseEvent(ctx, id, "approval", api.WithEventPayload(map[string]string{"by": "ana"})); err != nil {
		t.Errorf("RaiseEvent on a pending instance: %v", err)
	}
	if err := c.RaiseEvent(ctx, "no-such-instance", "approval"); grpcCode(err) != codes.NotFound {
		t.Errorf("RaiseEvent on an unknown ID: %v, want NOT_FOUND", err)
	}

	if _, err := c.ScheduleNewOrchestration(ctx, "Approval", api.WithInstanceID("go-approval")); err != nil {
		t.Fatalf("ScheduleNewOrchestration Approval: %v", err)
	}
	if m, err := c.WaitForOrchestrationStart(ctx, "go-approval"); err != nil || m.RuntimeStatus != api.RUNTIME_STATUS_RUNNING {
		t.Fatalf("WaitForOrchestrationStart: %v, %v; want RUNNING", m, err)
	}
	if err := c.RaiseEvent(ctx, "go-approval", "approval", api.WithEventPayload(map[string]string{"by": "ana"})); err != nil {
		t.Fatalf("RaiseEvent: %v", err)
	}
	m, err = c.WaitForOrchestrationCompletion(ctx, "go-approval")
	if err != nil {
		t.Fatalf("WaitForOrchestrationCompletion: %v", err)
	}
	if m.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED || m.SerializedOutput != `{"by":"ana"}` {
		t.Errorf("after the event: status %v, output %q; want COMPLETED, {\"by\":\"ana\"}", m.RuntimeStatus, m.SerializedOutput)
	}
	if err := c.RaiseEvent(ctx, "go-approval", "approval"); grpcCode(err) != codes.FailedPrecondition {
		t.Errorf("RaiseEvent on a finished instance: %v, want FAILED_PRECONDITION", err)
	}

	if _, err := c.ScheduleNewOrchestration(ctx, "Approval", api.WithInstanceID("go-terminate")); err != nil {
		t.Fatalf("ScheduleNewOrchestration Approval: %v", err)
	}
	if _, err := c.WaitForOrchestrationStart(ctx, "go-terminate"); err != nil {
		t.Fatalf("WaitForOrchestrationStart: %v", err)
	}
	if err := c.TerminateOrchestration(ctx, "go-terminate", api.WithOutput("stop")); err != nil {
		t.Fatalf("TerminateOrchestration: %v", err)
	}
	m, err = c.WaitForOrchestrationCompletion(ctx, "go-terminate")
	if err != nil {
		t.Fatalf("WaitForOrchestrationCompletion after terminate: %v", err)
	}
	if m.RuntimeStatus != api.RUNTIME_STATUS_TERMINATED || m.SerializedOutput != `"stop"` {
		t.Errorf("after terminate: status %v, output %q; want TERMINATED, \"stop\"", m.RuntimeStatus, m.SerializedOutput)
	}
	if err := c.TerminateOrchestration(ctx, "no-such-instance"); grpcCode(err) != codes.NotFound {
		t.Errorf("TerminateOrchestration of an unknown ID: %v, want NOT_FOUND", err)
	}

	if err := c.PurgeOrchestrationState(ctx, "go-approval"); err != nil {
		t.Fatalf("PurgeOrchestrationState: %v", err)
	}
	if _, err := c.FetchOrchestrationMetadata(ctx, "go-approval"); !errors.Is(err, api.ErrInstanceNotFound) {
		t.Errorf("FetchOrchestrationMetadata after purge: %v, want api.ErrInstanceNotFound", err)
	}
	if err := c.PurgeOrchestrationState(ctx, id); grpcCode(err) != codes.FailedPrecondition {
		t.Errorf("PurgeOrchestrationState of a pending instance: %v, want FAILED_PRECONDITION", err)
	}
	if err := c.PurgeOrchestrationState(ctx, "no-such-instance"); grpcCode(err) != codes.NotFound {
		t.Errorf("PurgeOrchestrationState of an unknown ID: %v, want NOT_FOUND", err)
	}
}
