package durabletaskgo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/client"
	"github.com/microsoft/durabletask-go/task"
)

// serveProc runs `reprise serve` on store and gRPC address addr until kill (SIGKILL).
type serveProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startServeProc(t *testing.T, store, addr string) *serveProc {
	t.Helper()
	cmd := exec.Command(filepath.Join(built(t), "reprise"), "serve", "--store", store, "--addr", "127.0.0.1:0", "--grpc", addr, "--lease", "2s")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && strings.HasPrefix(sc.Text(), "gRPC (Durable Task SDKs): ") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	if !<-ready {
		<-p.exited
		t.Fatalf("reprise serve did not start:\n%s", stderr.String())
	}
	return p
}

func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// TestServerKilled SIGKILLs `reprise serve` while a listener holds an activity, and starts it
// again on the same store and address: the listener reconnects, and the instance completes
// without its finished activity running again (the held one may run twice: at least once).
func TestServerKilled(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := startServeProc(t, store, addr)

	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	h := &hub{t: t, addr: addr, ctx: ctx, c: client.NewTaskHubGrpcClient(dial(t, addr), newMemLogger(t, "client"))}
	var runs runLog
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.listen("A", registry(t,
		map[string]task.Orchestrator{"Steps": func(ctx *task.OrchestrationContext) (any, error) {
			results := make([]string, 3)
			for i := range results {
				if err := ctx.CallActivity("Step", task.WithActivityInput(i+1)).Await(&results[i]); err != nil {
					return nil, err
				}
			}
			return results, nil
		}},
		map[string]task.Activity{"Step": func(ctx task.ActivityContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			runs.add(fmt.Sprintf("A:%d", n))
			if n == 2 {
				first := false
				once.Do(func() { first = true; close(entered) })
				if first { // the first run of step 2 waits until the server is gone
					<-release
				}
			}
			return fmt.Sprintf("A:%d", n), nil
		}}))
	h.schedule("Steps", "steps")
	h.await(entered, "the listener holding activity 2", "steps")

	srv.kill()
	close(release) // its result goes nowhere: the server is gone
	startServeProc(t, store, addr)

	h.expect("steps", api.RUNTIME_STATUS_COMPLETED, `["A:1","A:2","A:3"]`)
	got := runs.get()
	if n := slices.Index(got, "A:1"); n != 0 || slices.Contains(got[1:], "A:1") || !slices.Contains(got, "A:3") {
		t.Errorf("Step ran as %v: want A:1 once (it was committed before the kill), then A:2 (once or twice) and A:3", got)
	}
}
