package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/sidecar"
)

// durabletaskJSWorkerScenarios are the scenarios of interop/durabletask-js/scenarios.mjs that run
// on one worker with every function, in this order, each a subtest.
var durabletaskJSWorkerScenarios = []string{
	"sequence", "fan-out", "sub-orchestrations", "timer", "external-events", "continue-as-new",
	"retry", "terminate", "suspend-resume", "restart", "restart-unfinished", "rewind", "query", "purge-filter",
	"history",
}

// durabletaskJSUnsupported are the scenarios whose calls a package's API does not have, and why.
// scenarios.mjs checks the API too and refuses such a scenario with exit 2, so one run on a
// package without its calls fails with that message rather than with a TypeError.
var durabletaskJSUnsupported = map[string]map[string]string{
	"@dapr/durabletask-js": {
		"retry":              "its callActivity takes no retry policy",
		"restart":            "its client has no restartOrchestration",
		"restart-unfinished": "its client has no restartOrchestration",
		"rewind":             "its client has no rewindInstance",
		"query":              "its client has no getAllInstances or listInstanceIds",
		"history":            "its client has no getOrchestrationHistory",
		"filters":            "its worker sends no work-item filters",
	},
}

// durabletaskJSGaps are the scenarios that fail against `reprise serve` because of a gap in
// Reprise (not in the scenario), each skipped with what is missing until the gap is closed;
// REPRISE_INTEROP_GAPS=1 runs them anyway, to see them fail or to check a fix.
var durabletaskJSGaps = map[string]string{}

// TestInteropDurableTaskJSWorkers runs the workers of the JavaScript Durable Task SDKs
// (interop/durabletask-js/worker.mjs, a TaskHubGrpcWorker per process) against `reprise serve`,
// with the client of the same package driving each scenario (scenarios.mjs), one subtest per
// package on a server and SQLite store of its own:
//
//   - filters: two workers with work-item filters, each getting only the names it registered;
//   - the scenarios of durabletaskJSWorkerScenarios, on one worker with every function;
//   - kill: the worker is SIGKILLed while it holds an activity; a second worker finishes the
//     instance;
//   - share: two workers, both of which run some of the activities of one fan-out (of more
//     activities than one stream takes at once, see scenarios.mjs).
//
// The assertions are in the scripts; this test starts and kills the processes.
func TestInteropDurableTaskJSWorkers(t *testing.T) {
	node, dir := durabletaskJS(t)
	for _, pkg := range durabletaskJSPackages {
		t.Run(pkg, func(t *testing.T) {
			js := &jsInterop{node: node, dir: dir, pkg: pkg}
			js.addr = startServe(t, "--store", filepath.Join(t.TempDir(), "serve.db")).grpcAddr

			js.run(t, "filters", func(t *testing.T) {
				first := js.startWorker(t, "first", "filter-first", true)
				js.scenario(t, "filters-first")
				second := js.startWorker(t, "second", "filter-second", true)
				js.scenario(t, "filters-second")
				first.kill(t)
				second.kill(t)
			})

			// The same halves without filters (the SDKs' default): each worker is sent what it
			// does not run, says so, and its stream leaves those names to the other.
			js.run(t, "no filters", func(t *testing.T) {
				first := js.startWorker(t, "first", "filter-first", false)
				js.scenario(t, "learn-first")
				second := js.startWorker(t, "second", "filter-second", false)
				js.scenario(t, "learn-second")
				first.kill(t)
				second.kill(t)
			})

			t.Run("one worker", func(t *testing.T) {
				worker := js.startWorker(t, "first", "all", false)
				for _, name := range durabletaskJSWorkerScenarios {
					js.run(t, name, func(t *testing.T) { js.scenario(t, name) })
				}
				worker.kill(t)
			})

			js.run(t, "kill", func(t *testing.T) {
				first := js.startWorker(t, "first", "all", false)
				done := js.startScenario(t, "kill")
				waitHolds(t, first)
				first.kill(t)
				second := js.startWorker(t, "second", "all", false)
				second.release(t)
				done()
				second.kill(t)
			})

			js.run(t, "share", func(t *testing.T) {
				first := js.startWorker(t, "first", "all", false)
				second := js.startWorker(t, "second", "all", false)
				done := js.startScenario(t, "share")
				waitHolds(t, first, second)
				first.release(t)
				second.release(t)
				done()
			})
		})
	}
}

// TestInteropDurableTaskJSEntities runs durable entities of the JavaScript SDK (the Counter
// entity and the orchestrations of interop/durabletask-js/functions.mjs) against `reprise
// serve`, driven by the SDK's client (scenarios.mjs):
//
//   - entities-client: signalEntity (a failing operation rolled back, a scheduled signal),
//     getEntity, getEntities (prefixes, state, pages, deleted entities), cleanEntityStorage;
//   - entities-orchestration: an orchestration signals and calls an entity (a failing call
//     included); an entity signals an entity and starts an orchestration;
//   - entities-lock: concurrent critical sections over two entities (transfers; the total never
//     changes, no lock is left);
//   - entities-terminate: an orchestration terminated while it holds a lock with a signal queued
//     behind it: the lock is released and the signal runs;
//
// on a worker that sends its work-item filters (entity filters included), and
//
//   - kill (DTS388): the worker is SIGKILLed while it holds an entity batch of a critical
//     section with a signal queued behind the lock; a second worker gets the batch again, the
//     section ends, the lock is released and the queued signal runs.
func TestInteropDurableTaskJSEntities(t *testing.T) {
	node, dir := durabletaskJS(t)
	js := &jsInterop{node: node, dir: dir, pkg: "@microsoft/durabletask-js"}
	js.addr = startServe(t, "--store", filepath.Join(t.TempDir(), "serve.db")).grpcAddr

	t.Run("one worker", func(t *testing.T) {
		worker := js.startWorker(t, "first", "all", true)
		for _, name := range []string{"entities-client", "entities-orchestration", "entities-lock", "entities-terminate"} {
			js.run(t, name, func(t *testing.T) { js.scenario(t, name) })
		}
		worker.kill(t)
	})

	js.run(t, "kill", func(t *testing.T) {
		first := js.startWorker(t, "first", "all", false)
		done := js.startScenario(t, "entities-kill")
		waitHolds(t, first)
		first.kill(t)
		second := js.startWorker(t, "second", "all", false)
		second.release(t)
		done()
		second.kill(t)
	})
}

// jsInterop runs the scripts of interop/durabletask-js with one package against one server.
type jsInterop struct {
	node, dir, pkg, addr string
}

// run runs fn as the subtest name, or skips it when the package cannot run that scenario.
func (js *jsInterop) run(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		if why, ok := durabletaskJSUnsupported[js.pkg][name]; ok {
			t.Skipf("%s cannot run %s: %s", js.pkg, name, why)
		}
		if gap, ok := durabletaskJSGaps[name]; ok && os.Getenv("REPRISE_INTEROP_GAPS") != "1" {
			t.Skip(gap)
		}
		fn(t)
	})
}

// scenario runs one scenario of scenarios.mjs and fails t unless it passed.
func (js *jsInterop) scenario(t *testing.T, name string) {
	t.Helper()
	js.startScenario(t, name)()
}

// startScenario starts one scenario of scenarios.mjs and returns a function that waits for it to
// end and fails t unless it passed.
func (js *jsInterop) startScenario(t *testing.T, name string) (wait func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, js.node, "scenarios.mjs", "--package", js.pkg, name)
	cmd.Dir = js.dir
	cmd.Env = append(os.Environ(), "GRPC_ADDR="+js.addr)
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	return func() {
		t.Helper()
		err := <-exited
		exited <- err // for the cleanup
		if err != nil || !regexp.MustCompile(`(?m)^ok `+regexp.QuoteMeta(name)+`$`).MatchString(out.String()) {
			t.Fatalf("scenarios.mjs %s with %s: %v\n%s", name, js.pkg, err, out.String())
		}
	}
}

// jsWorker is a running worker.mjs.
type jsWorker struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	held   chan struct{} // closed at its first "hold" line
	mu     sync.Mutex
	holds  []string // the "hold" lines it printed
	stderr *lockedBuffer
	exited chan struct{}
}

// startWorker starts worker.mjs with the function set and returns once the SDK's worker has
// started; the process is killed when t ends.
func (js *jsInterop) startWorker(t *testing.T, name, set string, filters bool) *jsWorker {
	t.Helper()
	args := []string{"worker.mjs", "--package", js.pkg, "--name", name, "--functions", set}
	if filters {
		args = append(args, "--filters")
	}
	w := &jsWorker{name: name, cmd: exec.Command(js.node, args...), held: make(chan struct{}), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	w.cmd.Dir = js.dir
	w.cmd.Env = append(os.Environ(), "GRPC_ADDR="+js.addr)
	w.cmd.Stderr = w.stderr
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "started "):
				started <- line
			case strings.HasPrefix(line, "hold "):
				w.mu.Lock()
				w.holds = append(w.holds, line)
				if len(w.holds) == 1 {
					close(w.held)
				}
				w.mu.Unlock()
			}
		}
		_ = w.cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.exited
		if t.Failed() {
			t.Logf("worker %s (%s) stderr:\n%s", name, set, w.stderr)
		}
	})
	select {
	case line := <-started:
		t.Logf("worker %s", strings.TrimPrefix(line, "started "))
	case <-w.exited:
		t.Fatalf("worker %s exited before it started: %s\n%s", name, w.cmd.ProcessState, w.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("worker %s did not start within a minute:\n%s", name, w.stderr)
	}
	return w
}

// waitHolds waits until each worker holds an activity (a Hold in flight on it), for up to a
// minute in all.
func waitHolds(t *testing.T, workers ...*jsWorker) {
	t.Helper()
	deadline := time.After(time.Minute)
	for _, w := range workers {
		select {
		case <-w.held:
		case <-w.exited:
			t.Fatalf("worker %s exited: %s\n%s", w.name, w.cmd.ProcessState, w.stderr)
		case <-deadline:
			var held []string
			for _, w := range workers {
				w.mu.Lock()
				held = append(held, fmt.Sprintf("%s holds %d %q", w.name, len(w.holds), w.holds))
				w.mu.Unlock()
			}
			t.Fatalf("after a minute, worker %s holds no activity (%s)", w.name, strings.Join(held, "; "))
		}
	}
	for _, w := range workers {
		w.mu.Lock()
		t.Logf("worker %s holds %d activities, first %s", w.name, len(w.holds), w.holds[0])
		w.mu.Unlock()
	}
}

// release lets the worker's Hold activities finish, those in flight and all later ones.
func (w *jsWorker) release(t *testing.T) {
	t.Helper()
	if _, err := fmt.Fprintln(w.stdin, "release"); err != nil {
		t.Fatalf("release worker %s: %v", w.name, err)
	}
}

// kill ends the worker with SIGKILL, at once, with no chance to give its work items back.
func (w *jsWorker) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill worker %s: %v", w.name, err)
	}
	<-w.exited
}

// TestInteropDurableTaskJSMixed runs Go code and a JavaScript SDK worker on one task hub: an
// App registers the orchestrators GoCallsJS and GoCallsJSEntity, the activity GoReverse and the
// entity GoCounter, and serves gRPC beside them (package sidecar); a worker.mjs process
// without filters registers the activity Shout, the orchestrators JSCallsGo and JSCallsGoEntity
// and the entity Counter. The Go orchestrators call the JavaScript activity and call, signal and
// lock the JavaScript entity; the JavaScript orchestrators call the Go activity and signal and
// call the Go entity; and the worker never gets the App's names.
func TestInteropDurableTaskJSMixed(t *testing.T) {
	node, dir := durabletaskJS(t)
	goCallsJS := reprise.NewOrchestrator("GoCallsJS", func(ctx *reprise.OrchestrationContext, text string) (string, error) {
		return reprise.CallActivity[string](ctx, "Shout", text).Await()
	})
	goReverse := reprise.NewActivity("GoReverse", func(_ context.Context, text string) (string, error) {
		r := []rune(text)
		slices.Reverse(r)
		return string(r) + " (go)", nil
	})
	// A Go orchestration that drives the worker's JavaScript entity Counter: a call, a signal, and
	// a critical section over two counters.
	goCallsJSEntity := reprise.NewOrchestrator("GoCallsJSEntity", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]int, error) {
		a, b := reprise.EntityID{Name: "counter", Key: "go-a"}, reprise.EntityID{Name: "counter", Key: "go-b"}
		first, err := reprise.CallEntity[int](ctx, a, "add", 3).Await()
		if err != nil {
			return nil, err
		}
		if err := ctx.SignalEntity(b, "add", 4); err != nil {
			return nil, err
		}
		cs, err := ctx.LockEntities(a, b)
		if err != nil {
			return nil, err
		}
		moved, err := reprise.CallEntity[int](ctx, a, "add", -1).Await()
		if err != nil {
			return nil, err
		}
		into, err := reprise.CallEntity[int](ctx, b, "add", 1).Await()
		if err != nil {
			return nil, err
		}
		cs.Release()
		return []int{first, moved, into}, nil
	})
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "mixed.db")), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	// A Go entity that the JavaScript orchestrator JSCallsGoEntity signals and calls.
	goCounter := reprise.NewEntity("GoCounter", func(ctx *reprise.EntityContext[int]) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		ctx.SetState(ctx.State() + n)
		return ctx.State(), nil
	})
	app.Register(goCallsJS, goReverse, goCallsJSEntity, goCounter)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Shutdown(context.Background())
	srv, err := sidecar.Listen(ctx, app, sidecar.Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	pkg := "@microsoft/durabletask-js"
	js := &jsInterop{node: node, dir: dir, pkg: pkg, addr: srv.Addr().String()}
	js.startWorker(t, "js", "mixed", false)

	id, err := app.Client().StartNew(ctx, "GoCallsJS", "hello")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != reprise.StatusCompleted || string(inst.Output) != `"HELLO! (js)"` {
		t.Errorf("GoCallsJS: %s with output %s (failure %v), want Completed with the JavaScript activity's result", inst.Status, inst.Output, inst.Failure)
	}

	// The signal to go-b runs before the section's call: messages from one sender run in order.
	id, err = app.Client().StartNew(ctx, "GoCallsJSEntity", reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if inst, err = app.Client().WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	if inst.Status != reprise.StatusCompleted || string(inst.Output) != "[3,2,5]" {
		t.Errorf("GoCallsJSEntity: %s with output %s (failure %v), want Completed with [3,2,5] from the JavaScript entity", inst.Status, inst.Output, inst.Failure)
	}

	// The other way round, started by the SDK's client (App.Client refuses names it has not registered).
	conn, err := grpc.NewClient(js.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewTaskHubSidecarServiceClient(conn)
	started, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "JSCallsGo", Input: wrapperspb.String(`"abc"`)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: started.InstanceId, GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := done.OrchestrationState; st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.Output.GetValue() != `"cba (go)"` {
		t.Errorf("JSCallsGo: %v, want COMPLETED with the Go activity's result", st)
	}

	// A JavaScript orchestration signals and calls the Go entity: the signal runs first.
	started, err = client.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "JSCallsGoEntity", Input: wrapperspb.String(`5`)})
	if err != nil {
		t.Fatal(err)
	}
	done, err = client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: started.InstanceId, GetInputsAndOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := done.OrchestrationState; st.OrchestrationStatus != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED || st.Output.GetValue() != `10` {
		t.Errorf("JSCallsGoEntity: %v, want COMPLETED with 10 from the Go entity", st)
	}
}

// TestStartNewOnServe starts, through serve's management API (the CLI's start-new), an
// orchestrator that only an SDK worker runs: serve's App registers none, so it starts any name,
// and the worker runs it.
func TestStartNewOnServe(t *testing.T) {
	node, dir := durabletaskJS(t)
	srv := startServe(t, "--store", filepath.Join(t.TempDir(), "serve.db"))
	js := &jsInterop{node: node, dir: dir, pkg: "@microsoft/durabletask-js", addr: srv.grpcAddr}
	js.startWorker(t, "js", "all", false)
	r := runCLI(t, nil, "start-new", "Sequence", "--input", `["Oslo"]`, "--wait", "--timeout", "1m", "--url", srv.httpURL)
	if r.code != exitOK || !strings.Contains(r.stdout, "Completed") {
		t.Fatalf("start-new Sequence against serve: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}
