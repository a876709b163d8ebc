package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store/storetest"
)

// BenchmarkHotPath runs storetest.HotPath (the engine's store traffic for a 3-activity sequence);
// orch/s is the figure to compare. The default configuration is group commit;
// "nogroup" is one transaction per operation over as many connections, for comparison:
//
//	go test ./store/postgres -run '^$' -bench HotPath -benchtime 5000x -count 3
func BenchmarkHotPath(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"group", Options{}},
		{"group-writers1", Options{Writers: 1}},
		{"group-writers4", Options{Writers: 4}},
		{"nogroup", Options{MaxBatch: 1, Writers: 16, MaxConns: 24}},
	} {
		b.Run(c.name, func(b *testing.B) { benchHotPath(b, c.opts, 0) })
	}
}

// BenchmarkHotPathFinished is BenchmarkHotPath (group commit) on a hub that already holds a
// million finished instances with their histories: claims and commits must cost what they cost
// on an empty hub. Filling the database takes a minute or so.
//
//	go test ./store/postgres -run '^$' -bench HotPathFinished -benchtime 8000x
func BenchmarkHotPathFinished(b *testing.B) {
	benchHotPath(b, Options{}, 1_000_000)
}

func benchHotPath(b *testing.B, opts Options, finished int) {
	s := openStore(b, pgtest.DSN(b), opts)
	if finished > 0 {
		fillFinished(b, s, finished)
	}
	cpu0 := cpuTime(b, s)
	completed := storetest.HotPath(b, s)
	cpu1 := cpuTime(b, s)
	if cpu0.ok && cpu1.ok && completed > 0 {
		// CPU per orchestration is steadier than throughput on a shared machine.
		n := float64(completed)
		b.ReportMetric(float64(cpu1.client-cpu0.client)/float64(time.Millisecond)/n, "client-cpu-ms/orch")
		b.ReportMetric(float64(cpu1.server-cpu0.server)/float64(time.Millisecond)/n, "server-cpu-ms/orch")
	}
}

// fillFinished adds n Completed instances, each with the 4 history chunks of a finished hello
// sequence, to the store's hub, and analyzes the tables as autovacuum would have.
func fillFinished(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	for _, sql := range []string{
		`INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, input, output,
			created_at, updated_at, history_len, history_next)
		SELECT $1, 'done-' || g, 'seq', 'e', '', 1, '"in"', '["Hello Tokyo!","Hello Seattle!","Hello London!"]',
			now() - interval '1 day' + g * interval '1 millisecond', now() - interval '1 day', 4, 4
		FROM generate_series(1, $2::integer) g`,
		`INSERT INTO reprise.history (hub, instance_id, idx, data)
		SELECT $1, 'done-' || g, c, '\x00010203040506070809'::bytea
		FROM generate_series(1, $2::integer) g CROSS JOIN generate_series(0, 3) c`,
	} {
		if _, err := s.pool.Exec(ctx, sql, s.hub, n); err != nil {
			b.Fatalf("filling %d finished instances: %v", n, err)
		}
	}
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE reprise.instances, reprise.history`); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	b.Logf("filled %d finished instances in %v", n, time.Since(start).Round(time.Second))
}

type cpuSample struct {
	client, server time.Duration
	ok             bool
}

// cpuTime samples the CPU time used so far by this process and by the PostgreSQL backends
// connected to the store's database, when the server runs on this machine (Linux /proc).
func cpuTime(b *testing.B, s *Store) cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	out := cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: true}
	rows, err := s.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Logf("no server CPU figures: %v", err)
		return cpuSample{}
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return cpuSample{}
	}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return cpuSample{} // the server is elsewhere, or not ours to read
		}
		// Fields after the command name (which may contain spaces): utime and stime are the
		// 12th and 13th, in clock ticks (100 per second on Linux).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return cpuSample{}
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out.server += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return out
}
