package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// GetInstance returns an instance or store.ErrNotFound.
func (s *Store) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	if s.isClosed() {
		return store.Instance{}, fmt.Errorf("sqlite: get instance: %w", store.ErrClosed)
	}
	if err := store.CheckID(id); err != nil {
		return store.Instance{}, fmt.Errorf("sqlite: get instance: %w", err)
	}
	row := s.getInstance.QueryRowContext(ctx, s.hub, id)
	inst, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Instance{}, fmt.Errorf("sqlite: get instance %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Instance{}, s.readErr("get instance", err)
	}
	return inst, nil
}

// History returns the history chunks of the instance's current execution, or store.ErrNotFound.
func (s *Store) History(ctx context.Context, id string) ([][]byte, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: history: %w", store.ErrClosed)
	}
	if err := store.CheckID(id); err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	rows, err := s.history.QueryContext(ctx, s.hub, id)
	if err != nil {
		return nil, s.readErr("history", err)
	}
	defer rows.Close()
	found := false
	out := [][]byte{}
	for rows.Next() {
		found = true
		var chunk []byte
		if err := rows.Scan(&chunk); err != nil {
			return nil, s.readErr("history", err)
		}
		if chunk != nil {
			out = append(out, chunk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("history", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: history of %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// ListInstances returns one page of matching instances ordered by creation time, then ID
// (descending with q.NewestFirst).
func (s *Store) ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	if s.isClosed() {
		return nil, "", fmt.Errorf("sqlite: list instances: %w", store.ErrClosed)
	}
	if err := q.Check(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list instances: %w", err)
	}
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	query, args, err := s.listSQL(q, size+1) // one extra row tells whether another page follows
	if err != nil {
		return nil, "", err
	}
	rows, err := s.readDB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", s.readErr("list instances", err)
	}
	defer rows.Close()
	// Rows are read one at a time, so a page cut by MaxBytes never holds more than the bound
	// and one instance in memory.
	var page []store.Instance
	more, bytes := false, 0
	for rows.Next() {
		if len(page) == size || (q.MaxBytes > 0 && bytes >= q.MaxBytes) {
			more = true // a row follows the page
			break
		}
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, "", s.readErr("list instances", err)
		}
		page = append(page, inst)
		bytes += inst.Size()
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.readErr("list instances", err)
	}
	if !more {
		return page, "", nil
	}
	last := page[len(page)-1]
	return page, makeToken(toNanos(last.CreatedAt), last.ID), nil
}

// listSQL returns the statement of a listing of at most limit rows and its arguments.
func (s *Store) listSQL(q store.Query, limit int) (string, []any, error) {
	cols := instanceColumns
	if q.WithoutPayloads {
		cols = strings.NewReplacer("input,", "NULL,", "output,", "NULL,", "custom_status,", "NULL,").Replace(cols)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT ` + cols + ` FROM instances WHERE hub = ?`)
	args := s.filter(&sb, q)
	if q.ContinuationToken != "" {
		created, id, err := parseToken(q.ContinuationToken)
		if err != nil {
			return "", nil, err
		}
		if q.NewestFirst {
			sb.WriteString(` AND (created_at < ? OR (created_at = ? AND id < ?))`)
		} else {
			sb.WriteString(` AND (created_at > ? OR (created_at = ? AND id > ?))`)
		}
		args = append(args, created, created, id)
	}
	if q.NewestFirst {
		sb.WriteString(` ORDER BY created_at DESC, id DESC LIMIT ?`)
	} else {
		sb.WriteString(` ORDER BY created_at, id LIMIT ?`)
	}
	args = append(args, limit)
	return sb.String(), args, nil
}

// filter appends the conditions of q (all but its continuation token) to a WHERE clause that
// already holds hub = ?, and returns the arguments, the hub's first.
func (s *Store) filter(sb *strings.Builder, q store.Query) []any {
	// Every query lists one kind of instance.
	sb.WriteString(` AND kind = ?`)
	args := []any{s.hub, int(q.Kind)}
	if len(q.Statuses) > 0 {
		sb.WriteString(` AND status IN (?` + strings.Repeat(`, ?`, len(q.Statuses)-1) + `)`)
		for _, st := range q.Statuses {
			args = append(args, int(st))
		}
	}
	if q.Name != "" {
		sb.WriteString(` AND name = ? COLLATE NOCASE`) // names are case-insensitive, as in the registry
		args = append(args, q.Name)
	}
	if len(q.Versions) > 0 {
		// BINARY, the column's collation: versions match exactly. Not indexed (see
		// store.Query.Versions): the listing still walks instances_by_created in order.
		sb.WriteString(` AND version IN (?` + strings.Repeat(`, ?`, len(q.Versions)-1) + `)`)
		for _, v := range q.Versions {
			args = append(args, v)
		}
	}
	if !q.CreatedFrom.IsZero() {
		sb.WriteString(` AND created_at >= ?`)
		args = append(args, q.CreatedFrom.UnixNano())
	}
	if !q.CreatedTo.IsZero() {
		sb.WriteString(` AND created_at <= ?`)
		args = append(args, q.CreatedTo.UnixNano())
	}
	if !q.UpdatedFrom.IsZero() {
		sb.WriteString(` AND updated_at >= ?`)
		args = append(args, q.UpdatedFrom.UnixNano())
	}
	if !q.UpdatedTo.IsZero() {
		sb.WriteString(` AND updated_at < ?`)
		args = append(args, q.UpdatedTo.UnixNano())
	}
	if q.SkipTransient {
		sb.WriteString(` AND output IS NOT NULL`)
	}
	if q.IDPrefix != "" {
		// Compare bytes, not LIKE: LIKE is case-insensitive and treats % and _ as wildcards.
		sb.WriteString(` AND substr(CAST(id AS BLOB), 1, ?) = CAST(? AS BLOB)`)
		args = append(args, len(q.IDPrefix), q.IDPrefix)
	}
	return args
}

// CountInstances counts the instances matching q's filters, by status.
func (s *Store) CountInstances(ctx context.Context, q store.Query) (map[store.Status]int, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: count instances: %w", store.ErrClosed)
	}
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("sqlite: count instances: %w", err)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT status, count(*) FROM instances WHERE hub = ?`)
	args := s.filter(&sb, q)
	sb.WriteString(` GROUP BY status`)
	rows, err := s.readDB.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, s.readErr("count instances", err)
	}
	defer rows.Close()
	counts := map[store.Status]int{}
	for rows.Next() {
		var st, n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, s.readErr("count instances", err)
		}
		counts[store.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("count instances", err)
	}
	return counts, nil
}

// A continuation token is the position after the last row returned: its creation time and ID.
func makeToken(created int64, id string) string { return store.PositionToken(created, id) }

func parseToken(tok string) (int64, string, error) {
	created, id, err := store.ParsePositionToken(tok)
	if err != nil {
		return 0, "", fmt.Errorf("sqlite: list instances: %w", err)
	}
	return created, id, nil
}

// NextVisibleAt returns the earliest visible time of the messages not yet visible.
func (s *Store) NextVisibleAt(ctx context.Context) (time.Time, error) {
	if s.isClosed() {
		return time.Time{}, fmt.Errorf("sqlite: next visible time: %w", store.ErrClosed)
	}
	var next sql.NullInt64
	err := s.nextVisible.QueryRowContext(ctx, s.hub, s.now().UnixNano()).Scan(&next)
	if err != nil {
		return time.Time{}, s.readErr("next visible time", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromNanos(next.Int64), nil
}

// unclaimedSQL counts ready work whose name is not in the JSON arrays ?3 (orchestrators) and ?4
// (activities), as the claims match names (NOCASE); when ?5 (?6) is 1, ?3 (?4) lists the names
// excluded from a set of every name (store.AllNamesExcept), so the work counted is that of the
// names in it. Entities (kind 1) are not counted. It walks every ready message and task, which
// is why callers run it only now and then.
const unclaimedSQL = `
SELECT 0, min(m.instance_name), count(DISTINCT m.instance_id), min(m.id)
FROM inbox m INDEXED BY inbox_by_kind_name JOIN instances i ON i.hub = m.hub AND i.id = m.instance_id
WHERE m.hub = ?1 AND m.kind = 0 AND m.visible_at <= ?2 AND i.lease_expires <= ?2
	AND (m.instance_name IN (SELECT value FROM json_each(?3))) = ?5
GROUP BY m.instance_name
UNION ALL
SELECT 1, min(name), count(*), min(id) FROM tasks INDEXED BY tasks_by_name
WHERE hub = ?1 AND lease_expires <= ?2 AND (name COLLATE NOCASE IN (SELECT value FROM json_each(?4))) = ?6
GROUP BY name COLLATE NOCASE`

// Unclaimed counts the ready work of names in neither set.
func (s *Store) Unclaimed(ctx context.Context, orchestrators, activities store.Names) ([]store.Unclaimed, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: unclaimed work: %w", store.ErrClosed)
	}
	var args [2]struct {
		names  string
		except bool
	}
	for i, n := range []store.Names{orchestrators, activities} {
		if err := n.Check(); err != nil {
			return nil, fmt.Errorf("sqlite: unclaimed work: %w", err)
		}
		if excluded, ok := n.Except(); ok {
			n, args[i].except = excluded, true
		}
		var err error
		if args[i].names, err = namesArg(n); err != nil {
			return nil, fmt.Errorf("sqlite: unclaimed work: %w", err)
		}
	}
	rows, err := s.readDB.QueryContext(ctx, unclaimedSQL, s.hub, s.now().UnixNano(),
		args[0].names, args[1].names, args[0].except, args[1].except)
	if err != nil {
		return nil, s.readErr("unclaimed work", err)
	}
	defer rows.Close()
	var out []store.Unclaimed
	for rows.Next() {
		var u store.Unclaimed
		var kind int
		if err := rows.Scan(&kind, &u.Name, &u.Count, &u.Oldest); err != nil {
			return nil, s.readErr("unclaimed work", err)
		}
		u.Kind = store.OrchestrationWorkKind
		if kind == 1 {
			u.Kind = store.ActivityWorkKind
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("unclaimed work", err)
	}
	return out, nil
}

// backlogSQL counts visible messages by instance kind (?2 is now) and unleased tasks; each count
// walks an index that leads with the columns it tests.
const backlogSQL = `
SELECT (SELECT count(*) FROM inbox WHERE hub = ?1 AND kind = 0 AND visible_at <= ?2),
	(SELECT count(*) FROM inbox WHERE hub = ?1 AND kind = 1 AND visible_at <= ?2),
	(SELECT count(*) FROM tasks WHERE hub = ?1 AND lease_expires <= ?2)`

// Backlog counts the waiting work of every name.
func (s *Store) Backlog(ctx context.Context) (store.Backlog, error) {
	var b store.Backlog
	if s.isClosed() {
		return b, fmt.Errorf("sqlite: backlog: %w", store.ErrClosed)
	}
	err := s.readDB.QueryRowContext(ctx, backlogSQL, s.hub, s.now().UnixNano()).
		Scan(&b.OrchestrationMessages, &b.EntityMessages, &b.ActivityTasks)
	if err != nil {
		return store.Backlog{}, s.readErr("backlog", err)
	}
	return b, nil
}
