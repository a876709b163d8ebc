package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// WriteText writes the results as a readable table, with the machine and settings first.
func WriteText(w io.Writer, results []Result, cfg Config) error {
	if len(results) == 0 {
		return nil
	}
	metrics := "metrics on"
	if !results[0].Metrics {
		metrics = "metrics off"
	}
	fmt.Fprintf(w, "%s/%s, %d CPUs, %s; store: %s, %s; %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		runtime.Version(), results[0].Store, results[0].Durability, metrics)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\thosts\tn\ttime\torch/s\tact/s\tp50\tp99\tCPU/orch\tCPU/act\tpeak mem\tmachine busy\t")
	for _, r := range results {
		p50, p99 := latencyCells(r.Latency)
		label := r.Scenario
		if r.Traced {
			label += " +traces"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.2fs\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, max(r.Hosts, 1),
			countCell(r.Completed, r.N, r.Stopped), r.Seconds,
			rate(r.OrchestrationsPerSecond), rate(r.ActivitiesPerSecond), p50, p99,
			msOrDash(r.CPUMsPerOrchestration), msOrDash(r.CPUMsPerActivity), size(float64(r.PeakMemoryBytes)), busyCell(r.MachineCPUBusy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeTransactions(w, results); err != nil {
		return err
	}
	notes := []string{"machine busy: the share of all CPU time (every process, every core) that was busy during the run"}
	for _, r := range results {
		if r.Traced {
			notes = append(notes, fmt.Sprintf("%s +traces: %d spans through a batch span processor into a discarding exporter", r.Scenario, r.Spans))
		}
	}
	for _, r := range results {
		switch r.Scenario {
		case "timers":
			if r.Latency != nil {
				notes = append(notes, fmt.Sprintf("timers: p50/p99 are how late the %v timers fired", cfg.TimerDelay))
			}
		case "entity-signals", "entity-signals-1000", "entity-critical-sections":
			notes = append(notes, fmt.Sprintf("%s: %s entity operations/s (first signal sent to the last in the state), %s signals/s accepted by the client, %s CPU per operation",
				r.Scenario, rate(r.EntityOperationsPerSecond), rate(r.SignalsSentPerSecond), msOrDash(r.CPUMsPerEntityOperation)))
		case "idle":
			notes = append(notes, fmt.Sprintf("idle: %s of memory per idle instance; time, rate and latency are the release's (raise to Completed)",
				size(r.MemoryPerInstanceBytes)))
		}
		if len(r.ActivitiesPerHost) > 1 {
			per := make([]string, len(r.ActivitiesPerHost))
			for i, n := range r.ActivitiesPerHost {
				per[i] = fmt.Sprint(n)
			}
			notes = append(notes, fmt.Sprintf("%s: activities run per host %s; CPU is all hosts'; peak memory is the first host's",
				r.Scenario, strings.Join(per, " / ")))
		}
		if r.Stopped {
			notes = append(notes, fmt.Sprintf("%s: stopped by --duration after %d of %d", r.Scenario, r.Completed, r.N))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	}
	return nil
}

// writeTransactions writes the table of write transactions and fsyncs of the runs that counted
// them: the figure one durable commit per step is measured by.
func writeTransactions(w io.Writer, results []Result) error {
	counted := false
	for _, r := range results {
		counted = counted || r.Transactions != nil
	}
	if !counted {
		return nil
	}
	fmt.Fprintf(w, "\nwrite transactions (tx) and fsyncs of the measured phase; a step is an activity, or an entity operation\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttx\tfsyncs\twrites/tx\ttx/orch\tfsyncs/orch\tempty claims/orch\ttx/step\tfsyncs/step\tempty claims/step\t")
	for _, r := range results {
		t := r.Transactions
		if t == nil {
			continue
		}
		label := r.Scenario
		if r.Traced {
			label += " +traces"
		}
		if r.Hosts > 1 {
			label += " (first host)"
		}
		// Any transaction at all makes the per-orchestration count positive when there were
		// orchestrations to divide by; then a zero (no fsyncs, no empty claims) is a figure.
		orch, step := t.PerOrchestration > 0, t.StepUnit != ""
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, t.Count, t.Syncs, ratio(t.WritesPerTransaction, t.Count > 0),
			ratio(t.PerOrchestration, orch), ratio(t.SyncsPerOrchestration, orch), ratio(t.EmptyClaimsPerOrchestration, orch),
			ratio(t.PerStep, step), ratio(t.SyncsPerStep, step), ratio(t.EmptyClaimsPerStep, step))
	}
	return tw.Flush()
}

// ratio is a per-orchestration or per-step figure, "-" when there was nothing to divide by
// (defined false).
func ratio(v float64, defined bool) string {
	switch {
	case !defined:
		return "-"
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v) // group commit: far below one per orchestration
}

// countCell is n, or "completed of n" for a run that did not complete them all.
func countCell(completed, n int, partial bool) string {
	if partial {
		return fmt.Sprintf("%d of %d", completed, n)
	}
	return fmt.Sprint(n)
}

func latencyCells(p *Percentiles) (p50, p99 string) {
	if p == nil {
		return "-", "-"
	}
	return ms(p.P50), ms(p.P99)
}

func busyCell(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

func ms(v float64) string { return fmt.Sprintf("%.2fms", v) }

func msOrDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fms", v)
}

func rate(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func size(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// WriteGRPCText writes the results of a gRPC run as a side-by-side table, with the machine first
// and notes (such as the backends and workers that were skipped, and why) after.
func WriteGRPCText(w io.Writer, results []GRPCResult, notes []string) error {
	fmt.Fprintf(w, "%s/%s, %d CPUs, %s; the hello sequence in a Durable Task SDK worker, on SQLite (a fresh file per pair)\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tworker\tn\ttime\torch/s\tidle p50\tidle p99\tCPU/orch: backend\tworker\tclient\tpeak mem: backend\tworker\tmachine busy\t")
	for _, r := range results {
		p50, p99 := latencyCells(r.Latency)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Backend, r.Worker,
			countCell(r.Completed, r.N, r.Stopped || r.Error != ""), r.Seconds,
			rate(r.OrchestrationsPerSecond), p50, p99,
			msOrDash(r.BackendCPUMsPerOrchestration), msOrDash(r.WorkerCPUMsPerOrchestration), msOrDash(r.ClientCPUMsPerOrchestration),
			sizeOrDash(r.BackendPeakMemoryBytes), sizeOrDash(r.WorkerPeakMemoryBytes), busyCell(r.MachineCPUBusy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	notes = append([]string{
		"n instances started at once (time: first start to the last completion the backend recorded); idle p50/p99: one instance at a time, start to WaitForInstanceCompletion's answer",
		"CPU/orch: of the throughput run, per process (backend, worker, and this client); machine busy: the share of all CPU time (every process, every core) that was busy",
	}, notes...)
	for _, r := range results {
		if r.IdleBackendCPUMsPerOrchestration > 0 || r.IdleWorkerCPUMsPerOrchestration > 0 {
			notes = append(notes, fmt.Sprintf("%s / %s: CPU/orch of the latency run (an idle engine): backend %s, worker %s",
				r.Backend, r.Worker, msOrDash(r.IdleBackendCPUMsPerOrchestration), msOrDash(r.IdleWorkerCPUMsPerOrchestration)))
		}
		if r.Stopped {
			notes = append(notes, fmt.Sprintf("%s / %s: stopped by --timeout", r.Backend, r.Worker))
		}
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%s / %s: FAILED: %s", r.Backend, r.Worker, r.Error))
		}
	}
	fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n"))
	return nil
}

func sizeOrDash(v uint64) string {
	if v == 0 {
		return "-"
	}
	return size(float64(v))
}
