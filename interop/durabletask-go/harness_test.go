package durabletaskgo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/client"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// sidecarEnv names the durabletask-go v0.6.0 sidecar binary to run the worker tests against
// instead of `reprise serve`: the SDK's own server, to tell a test's mistake from Reprise's.
// Build it from this module with: go build -o FILE github.com/microsoft/durabletask-go
const sidecarEnv = "DURABLETASK_GO_SIDECAR"

// testDeadline bounds each worker test, so that a server that never delivers fails the test with
// the instance's status instead of hanging until go test's timeout.
const testDeadline = 45 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if dir := builtDir; dir != "" {
		os.RemoveAll(dir)
	}
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of the SDK or of gRPC outlived the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines that run SDK or gRPC code, once they have
// had time to end: the listeners' goroutines see their context's end only on their next receive.
func leakedGoroutines() string {
	var leaked []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked = leaked[:0]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "github.com/microsoft/durabletask-go/") || strings.Contains(g, "google.golang.org/grpc") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// built returns a directory holding the reprise CLI, built once for all tests.
func built(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "durabletask-go-interop-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", builtDir+string(filepath.Separator), "github.com/reprise-dev/reprise/cmd/reprise").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the reprise CLI: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// hub is one test's server, with a client of it and the test's deadline.
type hub struct {
	t    *testing.T
	addr string
	ctx  context.Context
	c    *client.TaskHubGrpcClient
}

// newHub starts, for t alone, a Durable Task gRPC server on a SQLite file of its own (`reprise
// serve`, or the sidecar that sidecarEnv names) and connects a client to it. Everything stops when
// t ends: listeners first, then the client, then the server.
func newHub(t *testing.T) *hub {
	t.Helper()
	store := filepath.Join(t.TempDir(), "store.db")
	var addr string
	if sidecar := os.Getenv(sidecarEnv); sidecar != "" {
		addr = start(t, "server listening at ", sidecar, "--db", store, "--host", "127.0.0.1", "--port", "0")
	} else {
		addr = start(t, "gRPC (Durable Task SDKs): ", filepath.Join(built(t), "reprise"), "serve", "--store", store, "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	c := client.NewTaskHubGrpcClient(dial(t, addr), newMemLogger(t, "client"))
	return &hub{t: t, addr: addr, ctx: ctx, c: c}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// in returns h for the subtest t: its checks fail t.
func (h *hub) in(t *testing.T) *hub {
	c := *h
	c.t = t
	return &c
}

// listener is one client.StartWorkItemListener on a connection of its own.
type listener struct {
	conn   *grpc.ClientConn
	cancel context.CancelFunc
}

// listen starts a work-item listener named name that runs r's functions. It stops when the test
// ends, or before with cancel (its context ends) or conn.Close (its connection goes).
func (h *hub) listen(name string, r *task.TaskRegistry) *listener {
	h.t.Helper()
	conn := dial(h.t, h.addr)
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	if err := client.NewTaskHubGrpcClient(conn, newMemLogger(h.t, "listener "+name)).StartWorkItemListener(ctx, r); err != nil {
		h.t.Fatalf("StartWorkItemListener %s: %v", name, err)
	}
	return &listener{conn: conn, cancel: cancel}
}

// schedule starts orchestrator name as instance id.
func (h *hub) schedule(name string, id api.InstanceID, opts ...api.NewOrchestrationOptions) {
	h.t.Helper()
	got, err := h.c.ScheduleNewOrchestration(h.ctx, name, append([]api.NewOrchestrationOptions{api.WithInstanceID(id)}, opts...)...)
	if err != nil {
		h.t.Fatalf("ScheduleNewOrchestration %s as %s: %v", name, id, err)
	}
	if got != id {
		h.t.Fatalf("ScheduleNewOrchestration %s returned ID %q, want %q", name, got, id)
	}
}

// finished waits for instance id to reach a terminal status and returns its metadata.
func (h *hub) finished(id api.InstanceID) *api.OrchestrationMetadata {
	h.t.Helper()
	m, err := h.c.WaitForOrchestrationCompletion(h.ctx, id)
	if err != nil {
		h.t.Fatalf("instance %s did not finish: %v; now %s", id, err, h.describe(id))
	}
	return m
}

// expect waits for instance id to finish and checks its status and JSON output.
func (h *hub) expect(id api.InstanceID, status api.OrchestrationStatus, output string) *api.OrchestrationMetadata {
	h.t.Helper()
	m := h.finished(id)
	if m.RuntimeStatus != status || m.SerializedOutput != output {
		h.t.Errorf("instance %s finished %v with output %s; want %v with output %s", id, m.RuntimeStatus, m.SerializedOutput, status, output)
	}
	return m
}

// failed waits for instance id to finish and checks that it failed with message. The v0.6.0
// client does not read failureDetails; the output is empty (the worker sends none), or, as
// Durable Functions does, the failure's message.
func (h *hub) failed(id api.InstanceID, message string) *api.OrchestrationMetadata {
	h.t.Helper()
	m := h.finished(id)
	if m.RuntimeStatus != api.RUNTIME_STATUS_FAILED || (m.SerializedOutput != "" && !strings.Contains(m.SerializedOutput, message)) {
		h.t.Errorf("instance %s finished %v with output %s; want FAILED, with no output or one that says %q", id, m.RuntimeStatus, m.SerializedOutput, message)
	}
	return m
}

// await waits for c to close, while instance id runs what.
func (h *hub) await(c <-chan struct{}, what string, id api.InstanceID) {
	h.t.Helper()
	select {
	case <-c:
	case <-h.ctx.Done():
		h.t.Fatalf("%s did not happen before the deadline; instance %s is %s", what, id, h.describe(id))
	}
}

// waitFor polls instance id until cond holds (an unknown instance does not yet) and returns its
// metadata. It is for states that no wait RPC reports, such as SUSPENDED.
func (h *hub) waitFor(id api.InstanceID, what string, cond func(*api.OrchestrationMetadata) bool) *api.OrchestrationMetadata {
	h.t.Helper()
	for {
		m, err := h.c.FetchOrchestrationMetadata(h.ctx, id)
		if err == nil && cond(m) {
			return m
		}
		if err != nil && !errors.Is(err, api.ErrInstanceNotFound) && h.ctx.Err() == nil {
			h.t.Fatalf("FetchOrchestrationMetadata %s: %v", id, err)
		}
		select {
		case <-h.ctx.Done():
			h.t.Fatalf("instance %s: %s did not happen before the deadline; now %s", id, what, h.describe(id))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// status waits for instance id to exist with status want.
func (h *hub) status(id api.InstanceID, want api.OrchestrationStatus) *api.OrchestrationMetadata {
	h.t.Helper()
	return h.waitFor(id, "status "+want.String(), func(m *api.OrchestrationMetadata) bool { return m.RuntimeStatus == want })
}

// gone checks that instance id no longer exists.
func (h *hub) gone(id api.InstanceID, why string) {
	h.t.Helper()
	if _, err := h.c.FetchOrchestrationMetadata(h.ctx, id); !errors.Is(err, api.ErrInstanceNotFound) {
		h.t.Errorf("instance %s after %s: %s (error %v), want api.ErrInstanceNotFound", id, why, h.describe(id), err)
	}
}

// describe is instance id's current state, for failure messages; it has a deadline of its own as
// it may run after the test's has passed.
func (h *hub) describe(id api.InstanceID) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := h.c.FetchOrchestrationMetadata(ctx, id)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return fmt.Sprintf("%v, input %s, output %s, custom status %q", m.RuntimeStatus, m.SerializedInput, m.SerializedOutput, m.SerializedCustomStatus)
}

// registry returns a task registry with the orchestrators and activities given, by name.
func registry(t *testing.T, orchestrators map[string]task.Orchestrator, activities map[string]task.Activity) *task.TaskRegistry {
	t.Helper()
	r := task.NewTaskRegistry()
	for name, o := range orchestrators {
		if err := r.AddOrchestratorN(name, o); err != nil {
			t.Fatal(err)
		}
	}
	for name, a := range activities {
		if err := r.AddActivityN(name, a); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// memLogger keeps the SDK's log lines and shows them if the test fails: the SDK logs from
// goroutines that outlive the test, where t.Log would panic. It keeps the first and the last
// lines only, as a listener whose stream fails at once reconnects in a tight loop.
type memLogger struct {
	prefix  string
	mu      sync.Mutex
	head    []string
	tail    []string // a ring of the last lines once head is full
	next    int
	dropped int
}

const memLoggerLines = 100

func newMemLogger(t *testing.T, prefix string) *memLogger {
	l := &memLogger{prefix: prefix}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", l.prefix, l.String())
		}
	})
	return l
}

func (l *memLogger) add(level, msg string) {
	line := time.Now().Format("15:04:05.000 ") + level + " " + msg
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case len(l.head) < memLoggerLines:
		l.head = append(l.head, line)
	case len(l.tail) < memLoggerLines:
		l.tail = append(l.tail, line)
	default:
		l.tail[l.next] = line
		l.next = (l.next + 1) % memLoggerLines
		l.dropped++
	}
}

func (l *memLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := slices.Clone(l.head)
	if l.dropped > 0 {
		lines = append(lines, fmt.Sprintf("... %d lines left out ...", l.dropped))
	}
	lines = append(lines, l.tail[l.next:]...)
	lines = append(lines, l.tail[:l.next]...)
	return strings.Join(lines, "\n")
}

func (l *memLogger) Debug(v ...any)                 { l.add("DEBUG", fmt.Sprint(v...)) }
func (l *memLogger) Debugf(format string, v ...any) { l.add("DEBUG", fmt.Sprintf(format, v...)) }
func (l *memLogger) Info(v ...any)                  { l.add("INFO", fmt.Sprint(v...)) }
func (l *memLogger) Infof(format string, v ...any)  { l.add("INFO", fmt.Sprintf(format, v...)) }
func (l *memLogger) Warn(v ...any)                  { l.add("WARN", fmt.Sprint(v...)) }
func (l *memLogger) Warnf(format string, v ...any)  { l.add("WARN", fmt.Sprintf(format, v...)) }
func (l *memLogger) Error(v ...any)                 { l.add("ERROR", fmt.Sprint(v...)) }
func (l *memLogger) Errorf(format string, v ...any) { l.add("ERROR", fmt.Sprintf(format, v...)) }
