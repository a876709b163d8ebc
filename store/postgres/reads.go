package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reprise-dev/reprise/store"
)

// instanceColumns lists the columns scanInstance reads, of the table aliased t.
func instanceColumns(t string) string {
	return strings.ReplaceAll(`t.id, t.name, t.execution_id, t.parent_id, t.status, t.input, t.output, t.custom_status,
	t.failure, t.created_at, t.updated_at, t.history_len, t.version, t.tags, t.kind, t.lease_token`, "t.", t+".")
}

// scanInstance scans instanceColumns; the lease token goes to token (nil skips it).
func scanInstance(r pgx.Row, token *int64) (store.Instance, error) {
	var in store.Instance
	var status, kind int16
	var tok int64
	if token == nil {
		token = &tok
	}
	var tags pgtype.Text
	err := r.Scan(&in.ID, &in.Name, &in.ExecutionID, &in.ParentID, &status, &in.Input, &in.Output,
		&in.CustomStatus, &in.Failure, &in.CreatedAt, &in.UpdatedAt, &in.HistoryLen, &in.Version, &tags, &kind, token)
	if err != nil {
		return in, err
	}
	in.Status = store.Status(status)
	in.Kind = store.Kind(kind)
	in.Tags, err = parseTags(tags)
	return in, err
}

// tagsText encodes tags for the tags column: a JSON object, or NULL for none. (Marshalling a
// map of strings cannot fail.)
func tagsText(tags map[string]string) pgtype.Text {
	if len(tags) == 0 {
		return pgtype.Text{}
	}
	b, _ := json.Marshal(tags)
	return pgtype.Text{String: string(b), Valid: true}
}

// parseTags decodes the tags column.
func parseTags(col pgtype.Text) (map[string]string, error) {
	if !col.Valid || col.String == "" {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(col.String), &tags); err != nil {
		return nil, fmt.Errorf("postgres: decode tags: %w", err)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	return tags, nil
}

// GetInstance returns an instance or store.ErrNotFound.
func (s *Store) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	if s.isClosed() {
		return store.Instance{}, errClosed("get instance")
	}
	if err := store.CheckID(id); err != nil {
		return store.Instance{}, fmt.Errorf("postgres: get instance: %w", err)
	}
	row := s.pool.QueryRow(ctx, `SELECT `+instanceColumns("i")+` FROM reprise.instances i WHERE i.hub = $1 AND i.id = $2`, s.hub, id)
	inst, err := scanInstance(row, nil)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Instance{}, fmt.Errorf("postgres: get instance %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Instance{}, s.dbErr("get instance", err)
	}
	return inst, nil
}

// History returns the history chunks of the instance's current execution, or store.ErrNotFound.
func (s *Store) History(ctx context.Context, id string) ([][]byte, error) {
	if s.isClosed() {
		return nil, errClosed("history")
	}
	if err := store.CheckID(id); err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	// One statement, so existence and history come from the same snapshot: zero rows means no
	// instance, one row with NULL data means an empty history.
	rows, err := s.pool.Query(ctx, `SELECT h.data FROM reprise.instances i
		LEFT JOIN reprise.history h ON h.hub = i.hub AND h.instance_id = i.id
		WHERE i.hub = $1 AND i.id = $2 ORDER BY h.idx`, s.hub, id)
	if err != nil {
		return nil, s.dbErr("history", err)
	}
	defer rows.Close()
	found := false
	out := [][]byte{}
	for rows.Next() {
		found = true
		var chunk []byte
		if err := rows.Scan(&chunk); err != nil {
			return nil, s.dbErr("history", err)
		}
		if chunk != nil {
			out = append(out, chunk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("history", err)
	}
	if !found {
		return nil, fmt.Errorf("postgres: history of %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// ListInstances returns one page of matching instances ordered by creation time, then ID
// (descending with q.NewestFirst).
func (s *Store) ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	if s.isClosed() {
		return nil, "", errClosed("list instances")
	}
	if err := q.Check(); err != nil {
		return nil, "", fmt.Errorf("postgres: list instances: %w", err)
	}
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	cols := instanceColumns("i")
	if q.WithoutPayloads {
		cols = strings.NewReplacer("i.input,", "NULL::bytea,", "i.output,", "NULL::bytea,", "i.custom_status,", "NULL::bytea,").Replace(cols)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT ` + cols + ` FROM reprise.instances i WHERE i.hub = $1`)
	args := s.filter(&sb, q)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.ContinuationToken != "" {
		created, id, err := parseToken(q.ContinuationToken)
		if err != nil {
			return nil, "", err
		}
		cmp := ` > `
		if q.NewestFirst {
			cmp = ` < `
		}
		sb.WriteString(` AND (i.created_at, i.id)` + cmp + `(` + arg(created) + `::timestamptz, ` + arg(id) + `::text)`)
	}
	// One extra row tells whether another page follows.
	if q.NewestFirst {
		sb.WriteString(` ORDER BY i.created_at DESC, i.id DESC LIMIT ` + arg(size+1))
	} else {
		sb.WriteString(` ORDER BY i.created_at, i.id LIMIT ` + arg(size+1))
	}

	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, "", s.dbErr("list instances", err)
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
		inst, err := scanInstance(rows, nil)
		if err != nil {
			return nil, "", s.dbErr("list instances", err)
		}
		page = append(page, inst)
		bytes += inst.Size()
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.dbErr("list instances", err)
	}
	if !more {
		return page, "", nil
	}
	last := page[len(page)-1]
	return page, makeToken(last.CreatedAt, last.ID), nil
}

// filter appends the conditions of q (all but its continuation token) to a WHERE clause on
// reprise.instances i that already holds i.hub = $1, and returns the arguments, the hub's first.
func (s *Store) filter(sb *strings.Builder, q store.Query) []any {
	args := []any{s.hub}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// Every query lists one kind of instance.
	sb.WriteString(` AND i.kind = ` + arg(int16(q.Kind)))
	if len(q.Statuses) > 0 {
		statuses := make([]int16, len(q.Statuses))
		for i, st := range q.Statuses {
			statuses[i] = int16(st)
		}
		sb.WriteString(` AND i.status = ANY(` + arg(statuses) + `::smallint[])`)
	}
	if q.Name != "" {
		sb.WriteString(` AND lower(i.name) = lower(` + arg(q.Name) + `::text)`) // names are case-insensitive
	}
	if len(q.Versions) > 0 {
		// Equality under a deterministic collation is bytewise: versions match exactly.
		sb.WriteString(` AND i.version = ANY(` + arg(q.Versions) + `::text[])`)
	}
	if !q.CreatedFrom.IsZero() {
		sb.WriteString(` AND i.created_at >= ` + arg(lowerBound(q.CreatedFrom)))
	}
	if !q.CreatedTo.IsZero() {
		sb.WriteString(` AND i.created_at <= ` + arg(upperBound(q.CreatedTo)))
	}
	if !q.UpdatedFrom.IsZero() {
		sb.WriteString(` AND i.updated_at >= ` + arg(lowerBound(q.UpdatedFrom)))
	}
	if !q.UpdatedTo.IsZero() {
		// Exclusive: below a bound with a fraction of a microsecond is below it rounded up.
		sb.WriteString(` AND i.updated_at < ` + arg(lowerBound(q.UpdatedTo)))
	}
	if q.SkipTransient {
		sb.WriteString(` AND i.output IS NOT NULL`)
	}
	if q.IDPrefix != "" {
		// starts_with, not LIKE: LIKE treats % and _ as wildcards.
		sb.WriteString(` AND starts_with(i.id, ` + arg(q.IDPrefix) + `::text)`)
	}
	return args
}

// CountInstances counts the instances matching q's filters, by status.
func (s *Store) CountInstances(ctx context.Context, q store.Query) (map[store.Status]int, error) {
	if s.isClosed() {
		return nil, errClosed("count instances")
	}
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("postgres: count instances: %w", err)
	}
	var sb strings.Builder
	sb.WriteString(`SELECT i.status, count(*) FROM reprise.instances i WHERE i.hub = $1`)
	args := s.filter(&sb, q)
	sb.WriteString(` GROUP BY i.status`)
	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, s.dbErr("count instances", err)
	}
	defer rows.Close()
	counts := map[store.Status]int{}
	for rows.Next() {
		var st int16
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, s.dbErr("count instances", err)
		}
		counts[store.Status(st)] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("count instances", err)
	}
	return counts, nil
}

// A continuation token is the position after the last row returned: its creation time (unix
// microseconds, the database's resolution) and ID.
func makeToken(created time.Time, id string) string {
	return store.PositionToken(created.UnixMicro(), id)
}

func parseToken(tok string) (time.Time, string, error) {
	created, id, err := store.ParsePositionToken(tok)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("postgres: list instances: %w", err)
	}
	return time.UnixMicro(created), id, nil
}

// NextVisibleAt returns the earliest visible time of the messages not yet visible: the first
// entry of inbox_by_visible after now.
func (s *Store) NextVisibleAt(ctx context.Context) (time.Time, error) {
	if s.isClosed() {
		return time.Time{}, errClosed("next visible time")
	}
	var next *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(visible_at) FROM reprise.inbox WHERE hub = $1 AND visible_at > now()`, s.hub).Scan(&next)
	if err != nil {
		return time.Time{}, s.dbErr("next visible time", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return *next, nil
}

// lowerBound and upperBound turn a bound in nanoseconds into one at the database's microsecond
// resolution that selects the same rows: stored times are whole microseconds, so ">= from" is
// ">= from rounded up" and "<= to" is "<= to rounded down". (The driver truncates, which made a
// lower bound with a fraction of a microsecond take in the microsecond before it.)
func lowerBound(t time.Time) time.Time {
	if u := t.Truncate(time.Microsecond); !u.Equal(t) {
		return u.Add(time.Microsecond)
	}
	return t
}

func upperBound(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// unclaimedSQL counts ready work whose name is not in the text arrays $2 (orchestrators) and $3
// (activities), as the claims match names; when $4 ($5) is true, $2 ($3) lists the names excluded
// from a set of every name (store.AllNamesExcept), so the work counted is that of the names in
// it. Entities (kind 1) are not counted. It walks every ready message and task, which is why
// callers run it only now and then.
var unclaimedSQL = `
SELECT 0, min(i.name), count(DISTINCT i.id), min(m.id)
FROM reprise.inbox m JOIN reprise.instances i ON i.hub = m.hub AND i.id = m.instance_id
WHERE m.hub = $1 AND m.kind = 0 AND m.visible_at <= now() AND NOT ` + live("i") + `
	AND (` + named("i", 2) + `) = $4
GROUP BY lower(i.name)
UNION ALL
SELECT 1, min(t.name), count(*), min(t.id) FROM reprise.tasks t
WHERE t.hub = $1 AND NOT ` + live("t") + ` AND (` + named("t", 3) + `) = $5
GROUP BY lower(t.name)`

// Unclaimed counts the ready work of names in neither set.
func (s *Store) Unclaimed(ctx context.Context, orchestrators, activities store.Names) ([]store.Unclaimed, error) {
	if s.isClosed() {
		return nil, errClosed("unclaimed work")
	}
	var args [2]struct {
		names  []string
		except bool
	}
	for i, n := range []store.Names{orchestrators, activities} {
		if err := n.Check(); err != nil {
			return nil, fmt.Errorf("postgres: unclaimed work: %w", err)
		}
		args[i].names = n
		if excluded, ok := n.Except(); ok {
			args[i].names, args[i].except = excluded, true
		}
		if args[i].names == nil {
			args[i].names = []string{}
		}
	}
	rows, err := s.pool.Query(ctx, unclaimedSQL, s.hub, args[0].names, args[1].names, args[0].except, args[1].except)
	if err != nil {
		return nil, s.dbErr("unclaimed work", err)
	}
	defer rows.Close()
	var out []store.Unclaimed
	for rows.Next() {
		var u store.Unclaimed
		var kind int32
		if err := rows.Scan(&kind, &u.Name, &u.Count, &u.Oldest); err != nil {
			return nil, s.dbErr("unclaimed work", err)
		}
		u.Kind = store.OrchestrationWorkKind
		if kind == 1 {
			u.Kind = store.ActivityWorkKind
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("unclaimed work", err)
	}
	return out, nil
}

// backlogSQL counts visible messages by instance kind and the tasks no live lease holds.
var backlogSQL = `
SELECT (SELECT count(*) FROM reprise.inbox WHERE hub = $1 AND kind = 0 AND visible_at <= now()),
	(SELECT count(*) FROM reprise.inbox WHERE hub = $1 AND kind = 1 AND visible_at <= now()),
	(SELECT count(*) FROM reprise.tasks t WHERE t.hub = $1 AND NOT ` + live("t") + `)`

// Backlog counts the waiting work of every name.
func (s *Store) Backlog(ctx context.Context) (store.Backlog, error) {
	var b store.Backlog
	if s.isClosed() {
		return b, errClosed("backlog")
	}
	err := s.pool.QueryRow(ctx, backlogSQL, s.hub).Scan(&b.OrchestrationMessages, &b.EntityMessages, &b.ActivityTasks)
	if err != nil {
		return store.Backlog{}, s.dbErr("backlog", err)
	}
	return b, nil
}
