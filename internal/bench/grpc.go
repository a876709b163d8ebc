package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// A gRPC run (RunGRPC) measures the hello sequence with its orchestrator and activity in a
// Durable Task SDK worker: for each backend (a program that serves the Durable Task gRPC protocol
// on a fresh SQLite file) and each worker (an SDK worker program), it starts the backend, then
// the worker against it, and drives the load through gRPC as an SDK client would (StartInstance,
// then WaitForInstanceCompletion). Backend and worker are processes of their own, so the CPU time
// of each is measured apart (from /proc/PID/stat, Linux only).
//
// The worker contract: the program takes the backend's address as its last two arguments
// (--addr HOST:PORT), prints "ready" on its standard output once started, stops on SIGINT, and
// has the orchestrator "HelloSequence" (no input), which calls the activity "SayHello" with
// "Tokyo", "Seattle" and "London" in turn and returns the three greetings as a JSON array, each
// a "Hello" that names its city.

// GRPCOrchestrator is the orchestrator every gRPC worker has.
const GRPCOrchestrator = "HelloSequence"

var grpcCities = []string{"Tokyo", "Seattle", "London"}

// GRPCBackend is a program that serves the Durable Task gRPC protocol on a SQLite file.
type GRPCBackend struct {
	Name string
	// Command is the program and its arguments serving on the SQLite file db (fresh, not yet
	// there) at a free loopback port; it prints its gRPC address on standard output, on a line
	// that starts with AddrPrefix.
	Command    func(db string) []string
	AddrPrefix string
	// N is the number of instances of the throughput run, LatencyN those of the latency run.
	N, LatencyN int
}

// GRPCWorker is a Durable Task SDK worker program (see the worker contract above).
type GRPCWorker struct {
	Name    string
	Command []string // "--addr HOST:PORT" is appended
	Dir     string   // working directory; "" is this process's
}

// GRPCConfig configures a gRPC run.
type GRPCConfig struct {
	Backends []GRPCBackend
	Workers  []GRPCWorker
	// Timeout bounds each measured run (latency, throughput): when it is over, the run stops and
	// reports what completed. Default 3 minutes.
	Timeout time.Duration
	// Concurrency is how many StartInstance calls are in flight at once in the throughput run
	// (every started instance is then waited for at once); default 100.
	Concurrency int
	// Progress, if set, is called as instances complete, with what runs ("reprise / go: throughput").
	Progress func(label string, done, total int)
}

// GRPCResult is what one backend did with one worker.
type GRPCResult struct {
	Backend string `json:"backend"`
	Worker  string `json:"worker"`
	// Error, when set, is why the pair has no (or partial) figures.
	Error string `json:"error,omitempty"`

	// The throughput run: N instances started at once; Completed of them completed and checked.
	// Seconds is from the first start to the last completion as the backend recorded it
	// (its completion time stamp); ClientSeconds until the client had seen them all complete.
	N             int     `json:"n"`
	Completed     int     `json:"completed"`
	Stopped       bool    `json:"stoppedByTimeout,omitempty"`
	Seconds       float64 `json:"seconds"`
	ClientSeconds float64 `json:"clientSeconds"`

	OrchestrationsPerSecond float64 `json:"orchestrationsPerSecond"`
	// CPU time per orchestration of the throughput run: the backend's process, the worker's
	// process, and this process (the client driving the load).
	BackendCPUMsPerOrchestration float64 `json:"backendCpuMsPerOrchestration"`
	WorkerCPUMsPerOrchestration  float64 `json:"workerCpuMsPerOrchestration"`
	ClientCPUMsPerOrchestration  float64 `json:"clientCpuMsPerOrchestration"`
	MachineCPUBusy               float64 `json:"machineCpuBusy,omitempty"`

	// The latency run: LatencyN instances one after another, start to completion as the client
	// sees it (WaitForInstanceCompletion returning).
	LatencyN int          `json:"latencyN"`
	Latency  *Percentiles `json:"latencyMs,omitempty"`
	// CPU time per orchestration of the latency run: an idle engine's cost of one orchestration,
	// which lies on its latency's critical path.
	IdleBackendCPUMsPerOrchestration float64 `json:"idleBackendCpuMsPerOrchestration,omitempty"`
	IdleWorkerCPUMsPerOrchestration  float64 `json:"idleWorkerCpuMsPerOrchestration,omitempty"`

	// Peak resident memory of each process over the whole pair's run (Linux VmHWM).
	BackendPeakMemoryBytes uint64 `json:"backendPeakMemoryBytes,omitempty"`
	WorkerPeakMemoryBytes  uint64 `json:"workerPeakMemoryBytes,omitempty"`
}

// grpcWarmUp instances run one at a time before anything is measured: they prove the pair works,
// and let the worker's and backend's code warm up.
const grpcWarmUp = 5

// RunGRPC runs every backend with every worker, in that order, and returns a result per pair.
// A pair that fails has its Error set and the run goes on with the next; the error returned is
// the failures joined (nil if all passed).
func RunGRPC(ctx context.Context, cfg GRPCConfig) ([]GRPCResult, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 100
	}
	dir, err := os.MkdirTemp("", "reprise-bench-grpc-")
	if err != nil {
		return nil, fmt.Errorf("bench: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	var results []GRPCResult
	var errs []error
	for _, b := range cfg.Backends {
		for _, w := range cfg.Workers {
			res := GRPCResult{Backend: b.Name, Worker: w.Name, N: b.N, LatencyN: b.LatencyN}
			db := filepath.Join(dir, fmt.Sprintf("%s-%s.db", b.Name, w.Name))
			if err := runGRPCPair(ctx, cfg, b, w, db, &res); err != nil {
				res.Error = err.Error()
				errs = append(errs, fmt.Errorf("%s with the %s worker: %w", b.Name, w.Name, err))
			}
			results = append(results, res)
			if ctx.Err() != nil {
				return results, errors.Join(append(errs, ctx.Err())...)
			}
		}
	}
	return results, errors.Join(errs...)
}

func runGRPCPair(ctx context.Context, cfg GRPCConfig, b GRPCBackend, w GRPCWorker, db string, res *GRPCResult) (err error) {
	backend, addr, err := startChild(ctx, b.Name, b.Command(db), "", b.AddrPrefix)
	if err != nil {
		return err
	}
	defer func() {
		res.BackendPeakMemoryBytes = peakMemory(backend.pid())
		if serr := backend.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	worker, _, err := startChild(ctx, w.Name+" worker", append(append([]string(nil), w.Command...), "--addr", addr), w.Dir, "ready")
	if err != nil {
		return err
	}
	defer func() {
		res.WorkerPeakMemoryBytes = peakMemory(worker.pid())
		if serr := worker.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("bench: dial %s at %s: %w", b.Name, addr, err)
	}
	defer conn.Close()
	d := &grpcDriver{client: pb.NewTaskHubSidecarServiceClient(conn), prefix: b.Name + "-" + w.Name}
	// Any failure below is the pair's: the processes' last words say why.
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s%s", err, backend.lastWords(), worker.lastWords())
		}
	}()

	label := fmt.Sprintf("%s / %s", b.Name, w.Name)
	warm, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range grpcWarmUp {
		if _, err := d.one(warm, fmt.Sprintf("warm-%d", i)); err != nil {
			return fmt.Errorf("warm-up instance %d: %w", i+1, err)
		}
	}

	// Latency first, on an engine that has nothing else to do.
	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var lat []time.Duration
	idle0 := [2]time.Duration{processCPU(backend.pid()), processCPU(worker.pid())}
	for i := range b.LatencyN {
		t, err := d.one(lctx, fmt.Sprintf("lat-%d", i))
		if err != nil {
			if lctx.Err() != nil && ctx.Err() == nil {
				res.Stopped = true
				break
			}
			return fmt.Errorf("latency instance %d: %w", i+1, err)
		}
		lat = append(lat, t)
		if cfg.Progress != nil {
			cfg.Progress(label+": latency", i+1, b.LatencyN)
		}
	}
	res.Latency = percentiles(lat)
	if n := float64(len(lat)); n > 0 {
		res.IdleBackendCPUMsPerOrchestration = msPer(processCPU(backend.pid())-idle0[0], n)
		res.IdleWorkerCPUMsPerOrchestration = msPer(processCPU(worker.pid())-idle0[1], n)
	}

	tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cpu0 := [3]time.Duration{processCPU(backend.pid()), processCPU(worker.pid()), cpuTime()}
	busy0 := machineCPU()
	progress := func(done int) {
		if cfg.Progress != nil {
			cfg.Progress(label+": throughput", done, b.N)
		}
	}
	tp, err := d.throughput(tctx, b.N, cfg.Concurrency, progress)
	cpu1 := [3]time.Duration{processCPU(backend.pid()), processCPU(worker.pid()), cpuTime()}
	res.MachineCPUBusy = machineCPU().busySince(busy0)
	res.Completed = tp.completed
	res.Seconds, res.ClientSeconds = tp.seconds, tp.clientSeconds
	if err != nil {
		if tctx.Err() == nil || ctx.Err() != nil {
			return fmt.Errorf("throughput run: %w", err)
		}
		res.Stopped = true
	}
	if n := float64(tp.completed); n > 0 {
		res.OrchestrationsPerSecond = n / res.Seconds
		res.BackendCPUMsPerOrchestration = msPer(cpu1[0]-cpu0[0], n)
		res.WorkerCPUMsPerOrchestration = msPer(cpu1[1]-cpu0[1], n)
		res.ClientCPUMsPerOrchestration = msPer(cpu1[2]-cpu0[2], n)
	}
	return nil
}

// msPer is d in milliseconds, divided by n.
func msPer(d time.Duration, n float64) float64 { return float64(d.Microseconds()) / 1000 / n }

// grpcDriver starts and waits for hello-sequence instances through a backend's gRPC API.
type grpcDriver struct {
	client pb.TaskHubSidecarServiceClient
	prefix string // of instance IDs
}

// one runs one instance to completion, checks its output and returns how long it took.
func (d *grpcDriver) one(ctx context.Context, id string) (time.Duration, error) {
	start := time.Now()
	if err := d.start(ctx, id); err != nil {
		return 0, err
	}
	_, err := d.wait(ctx, id)
	return time.Since(start), err
}

func (d *grpcDriver) start(ctx context.Context, id string) error {
	_, err := d.client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: d.prefix + "-" + id, Name: GRPCOrchestrator})
	if err != nil {
		return fmt.Errorf("StartInstance %s: %w", id, err)
	}
	return nil
}

// wait waits for the instance to complete, checks its output and returns when the backend
// recorded its completion (zero if it did not say).
func (d *grpcDriver) wait(ctx context.Context, id string) (time.Time, error) {
	resp, err := d.client.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: d.prefix + "-" + id, GetInputsAndOutputs: true})
	if err != nil {
		return time.Time{}, fmt.Errorf("WaitForInstanceCompletion %s: %w", id, err)
	}
	st := resp.GetOrchestrationState()
	if !resp.GetExists() || st.GetOrchestrationStatus() != pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED {
		return time.Time{}, fmt.Errorf("instance %s ended %v (failure %v), want COMPLETED", id, st.GetOrchestrationStatus(), st.GetFailureDetails())
	}
	if err := checkGreetings(st.GetOutput().GetValue()); err != nil {
		return time.Time{}, fmt.Errorf("instance %s: %w", id, err)
	}
	at := st.GetCompletedTimestamp()
	if at == nil {
		at = st.GetLastUpdatedTimestamp()
	}
	if at == nil {
		return time.Time{}, nil
	}
	return at.AsTime(), nil
}

// checkGreetings checks a HelloSequence output: a JSON array of three greetings, each a "Hello"
// naming its city, in order.
func checkGreetings(output string) error {
	var got []string
	if err := json.Unmarshal([]byte(output), &got); err != nil || len(got) != len(grpcCities) {
		return fmt.Errorf("%w: output %q, want a JSON array of %d greetings", ErrWrongOutput, output, len(grpcCities))
	}
	for i, city := range grpcCities {
		if !strings.HasPrefix(got[i], "Hello") || !strings.Contains(got[i], city) {
			return fmt.Errorf("%w: output %q: greeting %d does not greet %s", ErrWrongOutput, output, i+1, city)
		}
	}
	return nil
}

type throughputRun struct {
	completed              int
	seconds, clientSeconds float64
}

// throughput starts n instances at once (concurrency StartInstance calls in flight), waits for
// each as soon as it is started, and times the run until the last completion.
func (d *grpcDriver) throughput(ctx context.Context, n, concurrency int, progress func(done int)) (throughputRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		run      throughputRun
		last     time.Time // the latest completion the backend recorded
		firstErr error
		wg       sync.WaitGroup
	)
	starting := make(chan struct{}, concurrency)
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("tp-%d", i)
			starting <- struct{}{}
			err := d.start(ctx, id)
			<-starting
			var at time.Time
			if err == nil {
				at, err = d.wait(ctx, id)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			run.completed++
			run.clientSeconds = time.Since(t0).Seconds()
			if at.After(last) {
				last = at
			}
			progress(run.completed)
		})
	}
	wg.Wait()
	run.seconds = run.clientSeconds
	// The backend's time stamp of the last completion, when it gave one that fits the run: the
	// client's waits may see a completion late (the sidecar polls with a backoff of up to 3s).
	if s := last.Sub(t0).Seconds(); s > 0 && s <= run.clientSeconds {
		run.seconds = s
	}
	return run, firstErr
}

// child is a process of the run: a backend or a worker.
type child struct {
	name   string
	cmd    *exec.Cmd
	stderr *tail
	exited chan struct{} // closed when the process has exited and its output is read
	err    error         // of Wait, once exited is closed
}

// startChild starts argv and waits until it prints a line that starts with prefix on its
// standard output; it returns the rest of that line, trimmed.
func startChild(ctx context.Context, name string, argv []string, dir, prefix string) (*child, string, error) {
	c := &child{name: name, cmd: exec.Command(argv[0], argv[1:]...), stderr: &tail{max: 2048}, exited: make(chan struct{})}
	found := make(chan string, 1)
	c.cmd.Dir = dir
	c.cmd.Stdout = &lineWatch{prefix: prefix, found: found}
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("bench: start %s (%s): %w", name, argv[0], err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case line := <-found:
		return c, line, nil
	case <-c.exited:
		return nil, "", fmt.Errorf("bench: %s exited before it was ready (%v)%s", name, c.err, c.lastWords())
	case <-timer.C:
		_ = c.stop()
		return nil, "", fmt.Errorf("bench: %s printed no %q line within a minute%s", name, prefix, c.lastWords())
	case <-ctx.Done():
		_ = c.stop()
		return nil, "", ctx.Err()
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop interrupts the process (as Ctrl-C does), and kills it if it has not exited 10 seconds on.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return fmt.Errorf("bench: %s exited during the run (%v)%s", c.name, c.err, c.lastWords())
	default:
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-c.exited:
		return nil // its exit status after an interrupt says nothing about the run
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("bench: %s did not stop within 10s of SIGINT; killed%s", c.name, c.lastWords())
	}
}

// lastWords is the end of the process's standard error, for error messages.
func (c *child) lastWords() string {
	s := strings.TrimSpace(c.stderr.String())
	if s == "" {
		return ""
	}
	return fmt.Sprintf("\n%s stderr (end):\n%s", c.name, s)
}

// lineWatch is a process's standard output: it sends the first line that starts with prefix
// (without it) on found, and drops everything else.
type lineWatch struct {
	prefix string
	found  chan<- string
	line   []byte
	done   bool
}

func (l *lineWatch) Write(p []byte) (int, error) {
	if l.done {
		return len(p), nil
	}
	l.line = append(l.line, p...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(bytes.TrimSpace(l.line[:i]))
		l.line = l.line[i+1:]
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			l.found <- strings.TrimSpace(rest)
			l.done, l.line = true, nil
			return len(p), nil
		}
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
