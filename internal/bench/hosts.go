package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-dev/reprise"
)

// A multi-host run (Config.Hosts > 1) measures what several Reprise hosts sharing one PostgreSQL
// database do together. The run's own App is the first host: it starts the instances and waits
// for them, and runs work like the others. Every other host is a worker process, started with
// Config.WorkerCommand, that runs Worker on the same store and task hub. The protocol with a
// worker is three lines: the worker writes "ready" on its standard output once its App has
// started; the run closes the worker's standard input when the scenario is over; the worker then
// shuts down and writes its WorkerReport as one JSON line.

// WorkerConfig is what a worker host needs: the run's store, task hub and App settings.
type WorkerConfig struct {
	Store       string // a postgres:// DSN
	Hub         string
	CacheSize   int
	Concurrency int
}

// WorkerReport is what a worker host did.
type WorkerReport struct {
	Activities int64   `json:"activities"` // activity invocations it ran
	CPUSeconds float64 `json:"cpuSeconds"` // CPU time of its process, start to shutdown
}

// Args returns the command-line flags that carry cfg to a worker (see ParseWorkerArgs).
func (c WorkerConfig) Args() []string {
	return []string{"--store", c.Store, "--hub", c.Hub, "--cache", strconv.Itoa(c.CacheSize), "--concurrency", strconv.Itoa(c.Concurrency)}
}

// Worker runs one worker host until ctx ends: an App with the scenarios' orchestrators and
// activities on cfg's store and hub. ready is called once the App has started.
func Worker(ctx context.Context, cfg WorkerConfig, ready func()) (WorkerReport, error) {
	if !isPostgres(cfg.Store) {
		return WorkerReport{}, fmt.Errorf("bench: worker: store %q: want a postgres:// DSN", cfg.Store)
	}
	cpu0 := cpuTime()
	r := &runner{cfg: Config{Store: cfg.Store, CacheSize: cfg.CacheSize, Concurrency: cfg.Concurrency}}
	app := reprise.NewApp(appOptions(r.cfg, cfg.Hub)...)
	app.Register(r.definitions()...)
	if err := app.Start(ctx); err != nil {
		return WorkerReport{}, fmt.Errorf("bench: worker: %w", err)
	}
	ready()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := app.Shutdown(sctx)
	return WorkerReport{Activities: r.activities.Load(), CPUSeconds: (cpuTime() - cpu0).Seconds()}, err
}

// worker is a running worker process.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr strings.Builder
}

// startWorkers starts n worker processes for the run's hub and waits until each is ready.
func startWorkers(ctx context.Context, cfg Config, hub string, n int) ([]*worker, error) {
	wc := WorkerConfig{Store: cfg.Store, Hub: hub, CacheSize: cfg.CacheSize, Concurrency: cfg.Concurrency}
	var started []*worker
	for i := range n {
		w := &worker{cmd: exec.Command(cfg.WorkerCommand[0], append(cfg.WorkerCommand[1:], wc.Args()...)...)}
		w.cmd.Stderr = &w.stderr
		stdin, err := w.cmd.StdinPipe()
		if err == nil {
			w.stdin = stdin
			var stdout io.ReadCloser
			if stdout, err = w.cmd.StdoutPipe(); err == nil {
				w.lines = bufio.NewScanner(stdout)
				err = w.cmd.Start()
			}
		}
		if err != nil {
			killWorkers(started)
			return nil, fmt.Errorf("bench: start worker host %d (%s): %w", i+2, cfg.WorkerCommand[0], err)
		}
		started = append(started, w)
	}
	for i, w := range started {
		ready := make(chan bool, 1)
		go func() { ready <- w.lines.Scan() && w.lines.Text() == "ready" }()
		ok := false
		select {
		case ok = <-ready:
		case <-ctx.Done():
			_ = w.cmd.Process.Kill()
			<-ready // its output ends with it; the scanner is free again
		}
		if !ok || ctx.Err() != nil {
			killWorkers(started) // waits for them, so their standard error is complete
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("bench: worker host %d did not start: %s", i+2, strings.TrimSpace(w.stderr.String()))
		}
	}
	return started, nil
}

// killWorkers ends workers that never got to run the scenario, and waits for them.
func killWorkers(ws []*worker) {
	for _, w := range ws {
		_ = w.cmd.Process.Kill()
		w.stdin.Close()
		_ = w.cmd.Wait()
	}
}

// stopWorkers asks the workers to stop, waits for them and returns their reports.
func stopWorkers(ws []*worker) ([]WorkerReport, error) {
	for _, w := range ws {
		w.stdin.Close()
	}
	var reports []WorkerReport
	var errs []error
	for i, w := range ws {
		var rep WorkerReport
		var err error
		if w.lines.Scan() {
			err = json.Unmarshal(w.lines.Bytes(), &rep)
		} else {
			err = errors.New("no report")
		}
		if werr := w.cmd.Wait(); err == nil {
			err = werr
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bench: worker host %d: %w: %s", i+2, err, strings.TrimSpace(w.stderr.String())))
		}
		reports = append(reports, rep)
	}
	return reports, errors.Join(errs...)
}
