// Command peers runs the hello-sequence workload of `reprise bench` on Reprise and on its Go peers
// (durabletask-go, go-workflows, and Temporal's dev server if asked), each on its embedded or local
// SQLite store with default settings, and prints one table. See
// docs/decisions/0008-peer-benchmarks.md and docs/benchmarks.md. Linux (getrusage, /proc).
//
//	cd bench/peers && go run . [-n 2000] [-latency-n 200] [-engines reprise,durabletask,goworkflows] [-rounds 1] [-json]
//	go run . -engines reprise,temporal -temporal-cli "$(go env GOPATH)/bin/temporal"
//
// Every engine runs in a child process of its own (this program, re-executed with -child), in a
// fresh temporary directory, so that engines share no global state and each one's CPU time is its
// own. With -rounds > 1 the engines alternate: reprise, durabletask, goworkflows, reprise, ...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

// The workload: one orchestration calls an activity three times in sequence and returns the
// greetings, as internal/bench's hello_sequence_orchestrator does.
var (
	cities    = []string{"Tokyo", "Seattle", "London"}
	greetings = []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}
)

func greet(city string) string { return "Hello " + city + "!" }

// engine is one engine, started on a SQLite file, as the workload sees it.
type engine interface {
	// start starts one hello-sequence instance and returns its ID.
	start(ctx context.Context) (string, error)
	// wait waits for the instance to end, with the engine's own client, and returns its output
	// and the time the engine recorded its completion (zero if it records none).
	wait(ctx context.Context, id string) (out []string, completedAt time.Time, err error)
	close() error
}

// peer is an engine of the comparison.
type peer struct {
	name   string
	module string // its Go module, whose version the build info gives
	store  string // the store and its durability, as configured here
	open   func(ctx context.Context, path string) (engine, error)
	// extraVersion, if set, adds to the module's version (for example a server's).
	extraVersion func() string
}

// serverProcess is an engine that runs part of its work in a process of its own.
type serverProcess interface {
	serverCPU() time.Duration // the CPU time that process has used so far
}

// engineCPU is the CPU time of this process and of the engine's server process, if any.
func engineCPU(e engine) time.Duration {
	d := cpuTime()
	if s, ok := e.(serverProcess); ok {
		d += s.serverCPU()
	}
	return d
}

var peers = []peer{reprisePeer, durabletaskPeer, goworkflowsPeer, temporalPeer}

// result is one engine's run (one child process).
type result struct {
	Engine  string `json:"engine"`
	Version string `json:"version"`
	Store   string `json:"store"`
	Round   int    `json:"round"`

	N                int     `json:"n"`
	Seconds          float64 `json:"seconds"`         // first start to the last completion the engine recorded
	ClientSeconds    float64 `json:"client_seconds"`  // first start to the return of the last wait
	PerSecond        float64 `json:"instances_per_s"` // N / Seconds
	ClientPerSecond  float64 `json:"client_instances_per_s"`
	CPUMsPerInstance float64 `json:"cpu_ms_per_instance"` // user+system CPU of the throughput run / N

	LatencyN    int     `json:"latency_n"`
	P50Ms       float64 `json:"p50_ms"` // start call to the completion the engine recorded
	P99Ms       float64 `json:"p99_ms"`
	ClientP50Ms float64 `json:"client_p50_ms"` // start call to the return of the wait
	ClientP99Ms float64 `json:"client_p99_ms"`
	Error       string  `json:"error,omitempty"`
}

func main() {
	n := flag.Int("n", 2000, "instances of the throughput run")
	latencyN := flag.Int("latency-n", 200, "instances of the latency run, one after another")
	engines := flag.String("engines", "reprise,durabletask,goworkflows", "engines to run, comma-separated")
	rounds := flag.Int("rounds", 1, "rounds; the engines alternate within each")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of a table")
	timeout := flag.Duration("timeout", 15*time.Minute, "bound on each engine's run")
	child := flag.String("child", "", "internal: run this one engine in this process and print its result as JSON")
	round := flag.Int("round", 1, "internal: the round of a -child run")
	flag.Parse()

	if *child != "" {
		res := runChild(*child, *n, *latencyN, *timeout)
		res.Round = *round
		_ = json.NewEncoder(os.Stdout).Encode(res)
		if res.Error != "" {
			os.Exit(1)
		}
		return
	}

	var selected []string
	for name := range strings.SplitSeq(*engines, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(peers, func(p peer) bool { return p.name == name }) {
			var known []string
			for _, p := range peers {
				known = append(known, p.name)
			}
			fmt.Fprintf(os.Stderr, "unknown engine %q (known: %s)\n", name, strings.Join(known, ", "))
			os.Exit(2)
		}
		selected = append(selected, name)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var results []result
	failed := false
	for r := 1; r <= *rounds; r++ {
		for _, name := range selected {
			fmt.Fprintf(os.Stderr, "round %d: %s ...\n", r, name)
			res := runInChild(self, name, r)
			if res.Error != "" {
				failed = true
				fmt.Fprintf(os.Stderr, "round %d: %s: %s\n", r, name, res.Error)
			}
			results = append(results, res)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	} else {
		printTable(results, *n, *latencyN)
	}
	if failed {
		os.Exit(1)
	}
}

// runInChild runs one engine in a child process and reads its result.
func runInChild(self, name string, round int) result {
	// The child gets this run's flags, then its own (the last value of a flag wins).
	args := append(slices.Clone(os.Args[1:]), "-child", name, "-round", fmt.Sprint(round))
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var res result
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		if err == nil {
			err = jerr
		}
		return result{Engine: name, Round: round, Error: fmt.Sprintf("child process: %v", err)}
	}
	return res
}

func runChild(name string, n, latencyN int, timeout time.Duration) result {
	i := slices.IndexFunc(peers, func(p peer) bool { return p.name == name })
	if i < 0 {
		return result{Engine: name, Error: "unknown engine"}
	}
	p := peers[i]
	res := result{Engine: p.name, Version: moduleVersion(p.module), Store: p.store, N: n, LatencyN: latencyN}
	if p.extraVersion != nil {
		res.Version += ", " + p.extraVersion()
	}
	dir, err := os.MkdirTemp("", "reprise-peers-"+p.name+"-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if n > 0 {
		if err := throughput(ctx, p, dir+"/throughput.db", n, &res); err != nil {
			res.Error = "throughput: " + err.Error()
			return res
		}
	}
	if latencyN > 0 {
		if err := latency(ctx, p, dir+"/latency.db", latencyN, &res); err != nil {
			res.Error = "latency: " + err.Error()
		}
	}
	return res
}

// throughput starts n instances from 64 goroutines, waits for all of them in order and checks
// every output.
func throughput(ctx context.Context, p peer, path string, n int, res *result) (err error) {
	e, err := p.open(ctx, path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.close()) }()

	runtime.GC()
	cpu0 := engineCPU(e)
	t0 := time.Now()
	ids := make([]string, n)
	err = inParallel(n, func(i int) error {
		id, err := e.start(ctx)
		ids[i] = id
		return err
	})
	if err != nil {
		return err
	}
	var last time.Time
	for _, id := range ids {
		out, done, err := e.wait(ctx, id)
		if err != nil {
			return fmt.Errorf("instance %s: %w", id, err)
		}
		if err := check(id, out); err != nil {
			return err
		}
		if done.After(last) {
			last = done
		}
	}
	client := time.Since(t0)
	res.CPUMsPerInstance = float64((engineCPU(e) - cpu0).Microseconds()) / 1000 / float64(n)
	res.ClientSeconds = client.Seconds()
	res.ClientPerSecond = float64(n) / client.Seconds()
	res.Seconds = res.ClientSeconds
	if !last.IsZero() {
		res.Seconds = last.Sub(t0).Seconds()
	}
	res.PerSecond = float64(n) / res.Seconds
	return nil
}

// latency runs n instances one after another, each from its start call to its completion.
func latency(ctx context.Context, p peer, path string, n int, res *result) (err error) {
	e, err := p.open(ctx, path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.close()) }()

	recorded := make([]time.Duration, 0, n)
	client := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		id, err := e.start(ctx)
		if err != nil {
			return err
		}
		out, done, err := e.wait(ctx, id)
		if err != nil {
			return fmt.Errorf("instance %s: %w", id, err)
		}
		client = append(client, time.Since(t0))
		if err := check(id, out); err != nil {
			return err
		}
		if done.IsZero() {
			recorded = append(recorded, time.Since(t0))
		} else {
			recorded = append(recorded, done.Sub(t0))
		}
	}
	res.P50Ms, res.P99Ms = percentile(recorded, 50), percentile(recorded, 99)
	res.ClientP50Ms, res.ClientP99Ms = percentile(client, 50), percentile(client, 99)
	return nil
}

func check(id string, out []string) error {
	if !slices.Equal(out, greetings) {
		return fmt.Errorf("wrong output: instance %s returned %q, want %q", id, out, greetings)
	}
	return nil
}

// inParallel calls do(0) ... do(n-1) from 64 goroutines and returns the first error.
func inParallel(n int, do func(i int) error) error {
	next := make(chan int)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func percentile(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100 // nearest rank
	return float64(s[max(i-1, 0)].Microseconds()) / 1000
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warnLogger logs warnings and errors to standard error.
func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// moduleVersion is the version of the module this binary was built with.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, m := range info.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return "local " + m.Replace.Path
			}
			return m.Version
		}
	}
	return "?"
}

func printTable(results []result, n, latencyN int) {
	fmt.Printf("hello sequence: throughput %d instances (64 starters), latency %d instances one after another; %s/%s, %d CPUs, %s\n\n",
		n, latencyN, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tengine\tversion\tinstances/s\t(client)\tCPU ms/inst\tp50 ms\tp99 ms\t(client p50)\t(client p99)\t")
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(w, "%d\t%s\t%s\tfailed: %s\t\t\t\t\t\t\t\n", r.Round, r.Engine, r.Version, r.Error)
			continue
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", r.Round, r.Engine, r.Version,
			r.PerSecond, r.ClientPerSecond, r.CPUMsPerInstance, r.P50Ms, r.P99Ms, r.ClientP50Ms, r.ClientP99Ms)
	}
	_ = w.Flush()
	fmt.Println()
	for _, p := range peers {
		for _, r := range results {
			if r.Engine == p.name {
				fmt.Printf("%s: %s\n", p.name, p.store)
				break
			}
		}
	}
}
