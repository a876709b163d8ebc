package postgres

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
)

// TestClaimAllExceptSkipsExcludedBacklog checks that a claim of every name but some does not read
// the backlog of the names it excludes: with 20000 ready messages and tasks of an excluded name,
// the claims of the one instance and the one task of another name read a few dozen buffers, in
// the custom and in the generic plan (pgx prepares the claims, and after a few executions
// PostgreSQL may switch to the generic one). A claim that walked the ready work in order and
// filtered out the excluded names would read every one of those rows, on every claim.
func TestClaimAllExceptSkipsExcludedBacklog(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, pgtest.DSN(t), Options{Hub: "h"})
	// A claim starts the owner's epoch, which the claims below need to take anything.
	if _, err := s.ClaimOrchestrations(ctx, "n", store.Names{"none"}, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO reprise.instances (hub, id, name, execution_id, parent_id, status, created_at, updated_at)
SELECT 'h', 'busy-' || g, 'Busy', 'e', '', 6, now(), now() FROM generate_series(1, 20000) g
UNION ALL SELECT 'h', 'free', 'free', 'e', '', 6, now(), now();
INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name)
SELECT 'h', id, 'e', '\x00', now() - interval '1 minute', name FROM reprise.instances WHERE hub = 'h';
INSERT INTO reprise.tasks (hub, instance_id, execution_id, name, data)
SELECT 'h', id, 'e', name, '\x00' FROM reprise.instances WHERE hub = 'h';
ANALYZE reprise.inbox; ANALYZE reprise.tasks; ANALYZE reprise.instances;`)
	if err != nil {
		t.Fatal(err)
	}
	epoch := s.epoch("n")
	excluded := []string{"BUSY"}
	hits := regexp.MustCompile(`Buffers: shared hit=(\d+)`)
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, tc := range []struct {
			name, sql, updated string
			args               []any
		}{
			{"orchestrations", claimInstancesExceptSQL[store.KindOrchestration], "Update on instances",
				[]any{s.hub, "n", 10, epoch, micros(time.Minute), excluded, int64(1)}},
			{"activities", claimTasksExceptSQL, "Update on tasks",
				[]any{s.hub, "n", 10, epoch, micros(time.Minute), true, excluded, int64(1)}},
		} {
			// As a claim runs (claimTokenSQL), in a transaction rolled back after the look.
			tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true),
				set_config('plan_cache_mode', $1, true)`, mode); err != nil {
				t.Fatal(err)
			}
			rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "+tc.sql, tc.args...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			_ = tx.Rollback(ctx)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			all := strings.Join(plan, "\n")
			// The first line is the update with the rows it changed, the second its buffers,
			// which include those of everything below it.
			if !strings.HasPrefix(plan[0], tc.updated) || !strings.Contains(plan[0], "rows=1 ") {
				t.Errorf("%s (%s): the claim did not take the one row of another name:\n%s", tc.name, mode, all)
			}
			m := hits.FindStringSubmatch(plan[1])
			if m == nil {
				t.Fatalf("%s (%s): no buffer count in the plan:\n%s", tc.name, mode, all)
			}
			if n, _ := strconv.Atoi(m[1]); n > 100 {
				t.Errorf("%s (%s): the claim read %d buffers, want at most 100: it reads the excluded backlog\n%s", tc.name, mode, n, all)
			}
			if strings.Contains(all, "Seq Scan") {
				t.Errorf("%s (%s): the claim scans a table:\n%s", tc.name, mode, all)
			}
		}
	}
}
