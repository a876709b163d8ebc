package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/bench"
)

const benchGRPCUsage = `Usage: reprise bench grpc [flags]

Runs the hello sequence (an orchestrator calling 3 activities in turn) with its orchestrator and
activity in a Durable Task SDK worker, over gRPC, and shows the backends side by side. For each
backend, on a fresh SQLite file, with each worker: starts the backend and the worker as processes
of their own, runs 5 instances to warm up, then measures
  idle latency  instances one at a time, start to completion (StartInstance, then
                WaitForInstanceCompletion, as an SDK client calls them)
  throughput    N instances started at once, until the last completed
and the CPU time per orchestration of the backend's process, the worker's and this one (the
client). Every output is checked. A backend or worker that cannot run here (no go, no node) is
skipped with a note.

Backends:
  reprise   reprise serve (this program) as a process of its own, durable (fsync per commit)
  sidecar   the durabletask-go v0.6.0 sidecar (its main package) with --db: --sidecar PATH, else
            dtsidecar on PATH, else built from interop/durabletask-go (needs go)
Workers:
  go        interop/durabletask-go/cmd/worker, the durabletask-go v0.6.0 worker (built; needs go)
  js        interop/durabletask-js/bench-worker.mjs, the @microsoft/durabletask-js 0.4.0 worker
            (needs node; npm ci runs there first if its packages are missing)

Flags:
  --backends LIST        backends to run, comma-separated (default reprise,sidecar)
  --workers LIST         workers to run, comma-separated (default go,js)
  -n N                   instances of reprise's throughput run (default 3000)
  --latency-n N          instances of reprise's latency run (default 300)
  --sidecar-n N          instances of the sidecar's throughput run (default 300: it is slow)
  --sidecar-latency-n N  instances of the sidecar's latency run (default 50)
  --concurrency N        StartInstance calls in flight at once in a throughput run (default 100)
  --timeout D            bound of each latency and throughput run: stop and report what
                         completed (default 3m)
  --sidecar PATH         the durabletask-go sidecar program to run
  --repo DIR             the Reprise checkout whose interop/ has the workers (default: the
                         working directory or the nearest one above it that has interop/)
  --profile DIR          write a CPU profile of each reprise serve to DIR/serve-WORKER.pprof
                         (go tool pprof reads it)
  --json                 print the results as a JSON array

Exit codes: 0 every pair passed, 1 a pair failed or nothing could run, 2 usage error.
`

// grpcBenchSettings are the flags of `reprise bench grpc`.
type grpcBenchSettings struct {
	backends, workers               string
	n, latencyN, sidecarN, sidecarL int
	concurrency                     int
	timeout                         time.Duration
	sidecar, repo, profile          string
	asJSON                          bool
}

// runBenchGRPC is `reprise bench grpc`.
func runBenchGRPC(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reprise bench grpc")
	var s grpcBenchSettings
	fs.StringVar(&s.backends, "backends", "reprise,sidecar", "")
	fs.StringVar(&s.workers, "workers", "go,js", "")
	fs.IntVar(&s.n, "n", 3000, "")
	fs.IntVar(&s.latencyN, "latency-n", 300, "")
	fs.IntVar(&s.sidecarN, "sidecar-n", 300, "")
	fs.IntVar(&s.sidecarL, "sidecar-latency-n", 50, "")
	fs.IntVar(&s.concurrency, "concurrency", 100, "")
	fs.DurationVar(&s.timeout, "timeout", 3*time.Minute, "")
	fs.StringVar(&s.sidecar, "sidecar", "", "")
	fs.StringVar(&s.repo, "repo", "", "")
	fs.StringVar(&s.profile, "profile", "", "")
	fs.BoolVar(&s.asJSON, "json", false, "")
	rest, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, benchGRPCUsage)
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("bench grpc takes no scenarios, got %q", rest)
	}
	if err == nil {
		err = s.check()
	}
	if err != nil {
		return reportUsage(stderr, err.Error(), benchGRPCUsage)
	}

	if s.profile != "" {
		if err := os.MkdirAll(s.profile, 0o755); err != nil {
			fmt.Fprintln(stderr, "reprise: bench grpc: --profile:", err)
			return exitHostError
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "reprise: cannot find this program to run reprise serve:", err)
		return exitHostError
	}
	buildDir, err := os.MkdirTemp("", "reprise-bench-grpc-bin-")
	if err != nil {
		fmt.Fprintln(stderr, "reprise:", err)
		return exitHostError
	}
	defer os.RemoveAll(buildDir)
	cfg, notes := s.setup(ctx, exe, buildDir, stderr)
	if len(cfg.Backends) == 0 || len(cfg.Workers) == 0 {
		fmt.Fprintln(stderr, "reprise: bench grpc: nothing to run:\n"+strings.Join(notes, "\n"))
		return exitHostError
	}
	var bar *progressBar
	cfg.Progress = func(label string, done, total int) {
		if bar == nil || bar.name != label {
			if bar != nil {
				bar.clear()
			}
			bar = newProgressBar(stderr, label)
		}
		bar.update(done, total)
	}
	results, runErr := bench.RunGRPC(ctx, cfg)
	if bar != nil {
		bar.clear()
	}
	if s.asJSON {
		out, _ := json.MarshalIndent(results, "", "  ")
		fmt.Fprintln(stdout, string(out))
		for _, n := range notes {
			fmt.Fprintln(stderr, "reprise: bench grpc: "+n)
		}
	} else if err := bench.WriteGRPCText(stdout, results, notes); err != nil {
		fmt.Fprintln(stderr, "reprise:", err)
		return exitHostError
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "reprise: FAIL bench grpc:", runErr)
		return exitHostError
	}
	return exitOK
}

func (s *grpcBenchSettings) check() error {
	for _, v := range []int{s.n, s.latencyN, s.sidecarN, s.sidecarL, s.concurrency} {
		if v <= 0 {
			return errors.New("-n, --latency-n, --sidecar-n, --sidecar-latency-n and --concurrency must be positive")
		}
	}
	if s.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	for _, list := range []struct{ flag, value, known string }{
		{"--backends", s.backends, "reprise,sidecar"},
		{"--workers", s.workers, "go,js"},
	} {
		names := strings.Split(list.value, ",")
		if list.value == "" {
			return fmt.Errorf("%s: name at least one of %s", list.flag, list.known)
		}
		for _, n := range names {
			if !slices.Contains(strings.Split(list.known, ","), n) {
				return fmt.Errorf("%s: no %q; want some of %s", list.flag, n, list.known)
			}
		}
	}
	return nil
}

// setup turns the settings into the run's configuration: it finds or builds the programs, and
// says in a note why a backend or worker that cannot run here is skipped.
func (s *grpcBenchSettings) setup(ctx context.Context, exe, buildDir string, stderr io.Writer) (bench.GRPCConfig, []string) {
	cfg := bench.GRPCConfig{Timeout: s.timeout, Concurrency: s.concurrency}
	var notes []string
	skip := func(what, why string) { notes = append(notes, fmt.Sprintf("skipped %s: %s", what, why)) }
	backends, workers := strings.Split(s.backends, ","), strings.Split(s.workers, ",")
	repo, repoErr := findRepo(s.repo)
	goTool, goErr := exec.LookPath("go")

	// What has to be built from interop/durabletask-go, in one go build.
	var build []string
	sidecar := s.sidecar
	if slices.Contains(backends, "sidecar") && sidecar == "" {
		if p, err := exec.LookPath("dtsidecar"); err == nil {
			sidecar = p
		} else {
			build = append(build, "github.com/microsoft/durabletask-go")
		}
	}
	if slices.Contains(workers, "go") {
		build = append(build, "./cmd/worker")
	}
	var buildErr error
	switch {
	case len(build) == 0:
	case repoErr != nil:
		buildErr = repoErr
	case goErr != nil:
		buildErr = errors.New("go is not on PATH, and it builds this from interop/durabletask-go")
	default:
		fmt.Fprintf(stderr, "reprise: bench grpc: building %s in interop/durabletask-go\n", strings.Join(build, " and "))
		cmd := exec.CommandContext(ctx, goTool, append([]string{"build", "-o", buildDir + string(filepath.Separator)}, build...)...)
		cmd.Dir = filepath.Join(repo, "interop", "durabletask-go")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build %s failed: %v\n%s", strings.Join(build, " "), err, out)
		}
	}
	if slices.Contains(build, "github.com/microsoft/durabletask-go") {
		sidecar = filepath.Join(buildDir, "durabletask-go")
	}

	for _, b := range backends {
		switch b {
		case "reprise":
			profile := s.profile
			cfg.Backends = append(cfg.Backends, bench.GRPCBackend{
				Name: "reprise", N: s.n, LatencyN: s.latencyN, AddrPrefix: serveGRPCLine,
				Command: func(db string) []string {
					argv := []string{exe, "serve", "--store", db, "--addr", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}
					if profile != "" {
						// db is named after the pair (BACKEND-WORKER.db): so is the profile.
						argv = append(argv, "--cpuprofile", filepath.Join(profile, "serve-"+strings.TrimSuffix(filepath.Base(db), ".db")+".pprof"))
					}
					return argv
				},
			})
		case "sidecar":
			if buildErr != nil && slices.Contains(build, "github.com/microsoft/durabletask-go") {
				skip("the sidecar backend (give --sidecar PATH)", buildErr.Error())
				continue
			}
			cfg.Backends = append(cfg.Backends, bench.GRPCBackend{
				Name: "sidecar", N: s.sidecarN, LatencyN: s.sidecarL, AddrPrefix: "server listening at ",
				Command: func(db string) []string {
					return []string{sidecar, "--host", "127.0.0.1", "--port", "0", "--db", db}
				},
			})
		}
	}
	for _, w := range workers {
		switch w {
		case "go":
			if buildErr != nil {
				skip("the go worker", buildErr.Error())
				continue
			}
			cfg.Workers = append(cfg.Workers, bench.GRPCWorker{Name: "go", Command: []string{filepath.Join(buildDir, "worker")}})
		case "js":
			dir, err := jsWorkerDir(ctx, repo, repoErr, stderr)
			if err != nil {
				skip("the js worker", err.Error())
				continue
			}
			node, _ := exec.LookPath("node") // jsWorkerDir checked
			cfg.Workers = append(cfg.Workers, bench.GRPCWorker{Name: "js", Command: []string{node, "bench-worker.mjs"}, Dir: dir})
		}
	}
	return cfg, notes
}

// serveGRPCLine starts the line on which reprise serve prints its gRPC address.
const serveGRPCLine = "gRPC (Durable Task SDKs): "

// findRepo returns dir, or if it is "" the working directory or the nearest one above it that
// has the interop programs.
func findRepo(dir string) (string, error) {
	has := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "interop", "durabletask-go", "go.mod"))
		return err == nil
	}
	if dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("--repo %s has no interop/durabletask-go", dir)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if has(d) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("the working directory is not in a Reprise checkout (give --repo DIR)")
		}
	}
}

// jsWorkerDir returns interop/durabletask-js once node can run its bench worker there: it runs
// npm ci first if the SDK is not installed.
func jsWorkerDir(ctx context.Context, repo string, repoErr error, stderr io.Writer) (string, error) {
	if repoErr != nil {
		return "", repoErr
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node is not on PATH (install Node.js 20+ and npm)")
	}
	dir := filepath.Join(repo, "interop", "durabletask-js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@microsoft", "durabletask-js", "package.json")); err == nil {
		return dir, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("@microsoft/durabletask-js is not installed in %s, and npm is not on PATH to install it", dir)
	}
	fmt.Fprintf(stderr, "reprise: bench grpc: npm ci in %s\n", dir)
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci in %s failed: %v\n%s", dir, err, out)
	}
	return dir, nil
}
