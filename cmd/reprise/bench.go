package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/bench"
)

const benchUsage = `Usage: reprise bench [scenario ...] [flags]

Runs the standard workloads on a store, inside this process, and reports throughput, latency
percentiles, CPU time per orchestration and peak memory, and the store's write transactions,
fsyncs and empty claims per orchestration and per step (activity or entity operation). Every
output is checked: a wrong one fails the run (exit 1). Without scenarios, all of them run, in
this order:

  hello-sequence  N instances of the 3-activity hello sequence, all started at once (N 10000)
  fan-out         one orchestration with N parallel activities, then fan-in (N 10000)
  long-sequence   one orchestration with N sequential activities (N 10000)
  timers          N instances each waiting on a short durable timer (N 10000)
  idle            N instances waiting for an external event: memory per idle instance; then
                  all released, and the release is timed (N 10000)
  latency         N instances one after another on an idle engine, start to Completed (N 500)
  entity-signals  N signals to one entity from 64 goroutines, until all are in its state
                  (N 20000)
  entity-signals-1000
                  N signals spread over 1,000 entities (N 20000)
  entity-critical-sections
                  N orchestrations each locking two entities and moving a unit between them,
                  all started at once; the total is checked (N 2000)

  reprise bench entities runs the three entity scenarios.

  reprise bench grpc [flags] runs the hello sequence in Durable Task SDK workers (Go, JS) over
  gRPC instead, on reprise serve and on the durabletask-go sidecar: see reprise bench grpc --help.

Flags:
  -n N               size of each run (default: the scenario's)
  --duration D       bound each run: stop after D and report what completed
  --store S          SQLite file or postgres:// DSN to run on (default: a fresh temporary SQLite
                     file per scenario); each scenario uses a task hub of its own there, and
                     purges its instances at the end
  --relaxed          SQLite: skip the fsync of each commit (default: durable)
  --metrics=false    turn the App's metrics off (default on, as in a host)
  --timer-delay D    how long each timers instance waits (default 1s)
  --cache N          live executions cached (default 20000)
  --concurrency N    concurrent episodes and activities (default 1000)
  --hosts N          run on N hosts sharing the --store, which must be a postgres:// DSN
                     (default 1): this process is the first host and starts N-1 more, each a
                     process of this program (reprise bench-worker); CPU is all hosts'
  --traces MODE      off (default), on or both: on runs with OpenTelemetry tracing (an SDK
                     tracer provider with a batch span processor and an exporter that
                     discards the spans), both runs each scenario without, then with it
  --json             print the results as a JSON array
  --cpuprofile FILE  write a CPU profile of the runs to FILE (go tool pprof reads it)

A progress bar is drawn on standard error when it is a terminal.
Exit codes: 0 all runs passed, 1 a run failed (wrong output or error), 2 usage error.
`

// runBench is `reprise bench`. It needs no host: it runs an App of its own.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "grpc" {
		return runBenchGRPC(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("reprise bench")
	var cfg bench.Config
	var asJSON bool
	fs.IntVar(&cfg.N, "n", 0, "size of each run")
	fs.DurationVar(&cfg.Duration, "duration", 0, "bound of each run")
	fs.StringVar(&cfg.Store, "store", "", "SQLite file")
	fs.BoolVar(&cfg.Relaxed, "relaxed", false, "skip the fsync of each commit")
	metricsOn := fs.Bool("metrics", true, "record metrics")
	fs.DurationVar(&cfg.TimerDelay, "timer-delay", time.Second, "timer of the timers scenario")
	fs.IntVar(&cfg.CacheSize, "cache", 20000, "live executions cached")
	fs.IntVar(&cfg.Concurrency, "concurrency", 1000, "concurrent episodes and activities")
	fs.IntVar(&cfg.Hosts, "hosts", 1, "hosts sharing the store")
	fs.BoolVar(&asJSON, "json", false, "JSON output")
	traces := fs.String("traces", "off", "off, on or both")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file")
	names, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, benchUsage)
		return exitOK
	}
	cfg.NoMetrics = !*metricsOn
	if err != nil {
		return reportUsage(stderr, err.Error(), benchUsage)
	}
	switch {
	case cfg.N < 0:
		return reportUsage(stderr, "-n must be positive", benchUsage)
	case cfg.Duration < 0, cfg.TimerDelay <= 0:
		return reportUsage(stderr, "--duration and --timer-delay must be positive", benchUsage)
	case cfg.CacheSize < 0, cfg.Concurrency <= 0:
		return reportUsage(stderr, "--cache must not be negative and --concurrency must be positive", benchUsage)
	case strings.Contains(cfg.Store, "://") && !isPostgresDSN(cfg.Store):
		return reportUsage(stderr, "--store "+cfg.Store+": want a SQLite file path or a postgres:// DSN", benchUsage)
	case cfg.Hosts <= 0:
		return reportUsage(stderr, "--hosts must be positive", benchUsage)
	case cfg.Hosts > 1 && !isPostgresDSN(cfg.Store):
		return reportUsage(stderr, "--hosts above 1 needs a store the hosts share: --store postgres://...", benchUsage)
	case !slices.Contains([]string{"off", "on", "both"}, *traces):
		return reportUsage(stderr, "--traces "+*traces+": want off, on or both", benchUsage)
	}
	tracing := map[string][]bool{"off": {false}, "on": {true}, "both": {false, true}}[*traces]
	if cfg.Hosts > 1 {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "reprise: cannot find this program to start the other hosts:", err)
			return exitHostError
		}
		cfg.WorkerCommand = []string{exe, "bench-worker"}
	}
	if len(names) == 0 || slices.Equal(names, []string{"all"}) {
		names = bench.Names()
	}
	if i := slices.Index(names, "entities"); i >= 0 {
		var group []string
		for _, n := range bench.Names() {
			if strings.HasPrefix(n, "entity-") {
				group = append(group, n)
			}
		}
		names = slices.Concat(names[:i], group, names[i+1:])
	}
	for _, n := range names {
		if n == "grpc" {
			return reportUsage(stderr, "grpc runs on its own, with flags of its own: reprise bench grpc [flags] (see reprise bench grpc --help)", benchUsage)
		}
		if !slices.Contains(bench.Names(), n) {
			return reportUsage(stderr, fmt.Sprintf("no scenario %q", n), benchUsage)
		}
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "reprise: --cpuprofile: "+err.Error())
			return exitHostError
		}
		defer stop()
	}
	var results []bench.Result
	failed := false
	for run := range len(names) * len(tracing) {
		name := names[run/len(tracing)]
		cfg.Traces = tracing[run%len(tracing)]
		bar := newProgressBar(stderr, name)
		cfg.Progress = bar.update
		res, err := bench.Run(ctx, name, cfg)
		bar.clear()
		if err != nil {
			fmt.Fprintf(stderr, "reprise: FAIL %s: %v\n", name, err)
			failed = true
			if ctx.Err() != nil {
				break // interrupted: report what ran
			}
			continue
		}
		results = append(results, res)
	}
	if asJSON {
		out, _ := json.MarshalIndent(results, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else if err := bench.WriteText(stdout, results, cfg); err != nil {
		fmt.Fprintln(stderr, "reprise:", err)
		return exitHostError
	}
	if failed {
		return exitHostError
	}
	return exitOK
}

func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// runBenchWorker is `reprise bench-worker`, one of the other hosts of `reprise bench --hosts N`
// (which starts it; it is not meant to be run by hand). It runs the scenarios' orchestrators and
// activities on the store and hub it is given, writes "ready" once started, runs until its
// standard input closes (or a signal), then writes its report as a JSON line.
func runBenchWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("reprise bench-worker")
	var cfg bench.WorkerConfig
	fs.StringVar(&cfg.Store, "store", "", "postgres:// DSN")
	fs.StringVar(&cfg.Hub, "hub", "", "task hub")
	fs.IntVar(&cfg.CacheSize, "cache", 20000, "live executions cached")
	fs.IntVar(&cfg.Concurrency, "concurrency", 1000, "concurrent episodes and activities")
	const usage = "Usage: reprise bench-worker --store postgres://... --hub HUB [--cache N] [--concurrency N]\n" +
		"A host of a multi-host `reprise bench --hosts N` run, which starts it.\n"
	if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 || cfg.Hub == "" || !isPostgresDSN(cfg.Store) {
		return reportUsage(stderr, "bench-worker needs --store postgres://... and --hub", usage)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin) // the run closes it when the scenario is over
		cancel()
	}()
	rep, err := bench.Worker(ctx, cfg, func() { fmt.Fprintln(stdout, "ready") })
	if err != nil {
		fmt.Fprintln(stderr, "reprise:", err)
		return exitHostError
	}
	out, _ := json.Marshal(rep)
	fmt.Fprintln(stdout, string(out))
	return exitOK
}

// progressBar draws "name [#####.....] done/total" on a terminal, at most ten times a second; on
// anything else it draws nothing, so logs and pipes stay clean.
type progressBar struct {
	w    io.Writer
	name string
	on   bool
	last time.Time
}

func newProgressBar(w io.Writer, name string) *progressBar {
	return &progressBar{w: w, name: name, on: isTerminal(w)}
}

func (p *progressBar) update(done, total int) {
	if !p.on || total <= 0 || (done < total && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := done * width / total
	fmt.Fprintf(p.w, "\r%-15s [%s%s] %d/%d", p.name, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
}

func (p *progressBar) clear() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
