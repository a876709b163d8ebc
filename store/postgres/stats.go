package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// statsLock is the advisory lock key that lets one host at a time analyze the tables.
const statsLock int64 = 0x7265707269736502

// staleStatsSQL names the store's tables that have more than doubled (in pages) since the
// planner's statistics were last taken.
const staleStatsSQL = `
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'reprise' AND c.relkind = 'r' AND c.relname <> 'schema_version'
	AND pg_relation_size(c.oid) / current_setting('block_size')::integer > 2 * greatest(c.relpages, 4)`

// statsKeeper looks every fastStats during the first warmStats after Open, when a fresh
// database grows from nothing, then every slowStats.
const (
	fastStats = 500 * time.Millisecond
	warmStats = 2 * time.Minute
	slowStats = 5 * time.Second
)

// statsKeeper analyzes the store's tables when they have grown a lot since their statistics were
// taken. The store's statements are prepared, and PostgreSQL reuses a generic plan made with the
// statistics of the time: a plan made while a table was nearly empty (a fresh database) treats
// it as one row and may scan the whole table for every lookup, until autovacuum's next analyze
// (a minute or more away, on its default settings) invalidates it. New statistics replan every
// session's statements at once. At steady state the check is two small catalog queries. (It also
// vacuums, when autovacuum is off: see deadRowsSQL.)
func (s *Store) statsKeeper(ctx context.Context) {
	defer s.wg.Done()
	warm := time.Now().Add(warmStats)
	for {
		wait := slowStats
		if time.Now().Before(warm) {
			wait = fastStats
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("postgres: refreshing planner statistics", "err", err)
		}
	}
}

// deadRowsSQL names the store's tables full of dead rows, when autovacuum is off (as on some CI
// servers). Claims walk the oldest messages and tasks first, exactly where a queue's dead rows
// pile up, and would slow down run after run; a production server vacuums them itself.
const deadRowsSQL = `
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = 'reprise' AND n_dead_tup > greatest(1000, n_live_tup) AND NOT current_setting('autovacuum')::boolean`

func (s *Store) maintain(ctx context.Context) error {
	if err := s.analyzeStale(ctx); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, deadRowsSQL)
	if err != nil {
		return err
	}
	dead, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(dead) == 0 {
		return err
	}
	// VACUUM cannot run in a transaction, so the lock that lets one host at a time do it is a
	// session lock, on a connection of its own.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var mine bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, statsLock).Scan(&mine); err != nil || !mine {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, statsLock) //nolint:errcheck // the session ends the lock anyway
	for _, table := range dead {
		if _, err := conn.Exec(ctx, "VACUUM reprise."+pgx.Identifier{table}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) analyzeStale(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, staleStatsSQL)
	if err != nil {
		return err
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(stale) == 0 {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, statsLock).Scan(&mine); err != nil || !mine {
			return err // another host is at it
		}
		for _, table := range stale {
			if _, err := tx.Exec(ctx, "ANALYZE reprise."+pgx.Identifier{table}.Sanitize()); err != nil {
				return err
			}
		}
		return nil
	})
}
