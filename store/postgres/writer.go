package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/reprise-dev/reprise/store"
)

// Group commit.
//
// CreateInstance, SendMessage, CommitEpisode and CompleteActivity are queued for a few writer
// goroutines. Each writer takes what has queued up (at most MaxBatch operations) and applies it in
// ONE transaction sent as ONE pgx.Batch: one round trip, one commit record, one WAL flush, and
// one NOTIFY (PostgreSQL serializes committing transactions that notify, holding a global lock
// through their WAL flush, so a notification per operation would cap the whole cluster at one
// flush per commit). The operations of a kind are merged into array statements (one statement
// commits all the episodes, one all the activity completions, one creates all the instances),
// so the database's work per operation is a few rows, not a few statements.
//
// The batch has no BEGIN: the statements before pgx's single Sync message form one implicit
// transaction, committed at the Sync, or rolled back whole if a statement fails.
//
// Fencing without savepoints: one statement commits all the group's episodes. Its fenced UPDATE
// changes only the instances that still carry the episode's lease, and the rest of an episode
// (history, consumed messages, tasks) joins on what that UPDATE returned, so an episode that lost
// its lease leaves no trace while the others commit. The UPDATE also stamps each instance with
// commit_id, a number the transaction drew first (currval of lease_tokens), which the statements
// that must come later (sub-orchestration starts, then the messages, which may be addressed to
// them) test. A statement that fails for another reason (bad data) rolls the whole transaction
// back; the writer then retries each operation alone, so only the bad one fails.

type opKind uint8

const (
	opCreate opKind = iota
	opSend
	opEpisode
	opComplete
	opSendEntities
)

// writeOp is one queued write and, once applied, its outcome.
type writeOp struct {
	ctx    context.Context
	kind   opKind
	inst   store.Instance       // opCreate
	msg    store.Message        // opCreate: the start message; opSend: the message; opComplete: the result
	policy store.ReusePolicy    // opCreate
	ep     *store.Episode       // opEpisode
	leased []store.ActivityWork // opEpisode: the tasks it leased (Episode.LeaseTasks)
	taskID int64                // opComplete
	lease  store.Lease          // opComplete
	msgs   []store.Message      // opSendEntities

	err  error
	eff  effects
	done chan error // buffered, so a writer never blocks on a caller that gave up
}

// effects are the local wake-ups an operation causes, fired once its transaction committed.
type effects struct {
	orchestration bool
	activity      bool
	entity        bool
	changed       []string
}

// work records a wake-up for the work of an instance of kind.
func (e *effects) work(kind store.Kind) {
	if kind == store.KindEntity {
		e.entity = true
	} else {
		e.orchestration = true
	}
}

// do queues o for a writer and waits for its outcome. If ctx ends first, do returns ctx.Err() and
// the operation may or may not have been applied.
func (s *Store) do(ctx context.Context, o *writeOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.ctx = ctx
	o.done = make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed("write")
	}
	select {
	case s.queue <- o:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) writeLoop() {
	defer s.wg.Done()
	var group, deferred []*writeOp
	for {
		group = append(group[:0], deferred...)
		deferred = deferred[:0]
		if len(group) == 0 {
			select {
			case o := <-s.queue:
				group = append(group, o)
			case <-s.quit:
				// No sender can be inside do any more (closed is set under the lock), so this
				// drains everything that will ever be queued.
				for {
					select {
					case o := <-s.queue:
						o.done <- errClosed("write")
					default:
						return
					}
				}
			}
		}
	fill:
		for len(group) < s.maxBatch {
			select {
			case o := <-s.queue:
				group = append(group, o)
			default:
				break fill
			}
		}
		group, deferred = splitConflicts(group, deferred)
		s.runGroup(group)
		clear(group)
	}
}

// splitConflicts moves to deferred the operations that touch the same created instance, episode
// instance or task as an earlier one in the group: the merged statements apply each row's change
// once, so two commits of one lease, for one, must go to separate transactions for the second to
// be fenced.
func splitConflicts(group, deferred []*writeOp) ([]*writeOp, []*writeOp) {
	var creates, episodes map[string]bool
	var tasks map[int64]bool
	kept := group[:0]
	for _, o := range group {
		switch o.kind {
		case opCreate:
			// ON CONFLICT cannot touch a row twice in one statement.
			if creates == nil {
				creates = make(map[string]bool)
			}
			if creates[o.inst.ID] {
				deferred = append(deferred, o)
				continue
			}
			creates[o.inst.ID] = true
		case opEpisode:
			if episodes == nil {
				episodes = make(map[string]bool)
			}
			if episodes[o.ep.Instance.ID] {
				deferred = append(deferred, o)
				continue
			}
			episodes[o.ep.Instance.ID] = true
		case opComplete:
			if tasks == nil {
				tasks = make(map[int64]bool)
			}
			if tasks[o.taskID] {
				deferred = append(deferred, o)
				continue
			}
			tasks[o.taskID] = true
		}
		kept = append(kept, o)
	}
	return kept, deferred
}

// runGroup applies the operations in one transaction (retrying them one by one if it fails on a
// statement), fires the wake-ups of those that succeeded, and answers every caller.
func (s *Store) runGroup(ops []*writeOp) {
	live := ops[:0:0]
	for _, o := range ops {
		if err := o.ctx.Err(); err != nil {
			o.done <- err // the caller has gone; do not apply what it no longer waits for
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	err := s.applyGroup(live)
	var pgErr *pgconn.PgError
	if err != nil && len(live) > 1 && errors.As(err, &pgErr) {
		// The server refused a statement and rolled everything back: nothing was applied, so
		// each operation can safely run again alone, and only the faulty one fails.
		for _, o := range live {
			o.err, o.eff = nil, effects{}
			if err := s.applyGroup([]*writeOp{o}); err != nil {
				o.err, o.eff = s.dbErr(o.kind.String(), err), effects{}
			}
		}
	} else if err != nil {
		// The connection failed or the outcome is unknown: report it, do not retry (a commit
		// that did happen would now be fenced off and look lost).
		for _, o := range live {
			o.err, o.eff = s.dbErr(o.kind.String(), err), effects{}
		}
	}
	var orch, act, ent bool
	for _, o := range live {
		orch = orch || o.eff.orchestration
		act = act || o.eff.activity
		ent = ent || o.eff.entity
		for _, id := range o.eff.changed {
			s.notifier.Changed(id)
		}
	}
	if orch {
		s.notifier.Notify(store.OrchestrationWorkKind)
	}
	if act {
		s.notifier.Notify(store.ActivityWorkKind)
	}
	if ent {
		s.notifier.Notify(store.EntityWorkKind)
	}
	for _, o := range live {
		o.done <- o.err
	}
}

func (k opKind) String() string {
	switch k {
	case opCreate:
		return "create instance"
	case opSend:
		return "send message"
	case opEpisode:
		return "commit episode"
	case opSendEntities:
		return "send entity messages"
	default:
		return "complete activity"
	}
}

// group collects the statements of one transaction and the readers of their results.
type group struct {
	s       *Store
	batch   pgx.Batch
	readers []func(pgx.BatchResults) error
}

func (g *group) queue(sql string, read func(pgx.BatchResults) error, args ...any) {
	g.batch.Queue(sql, args...)
	g.readers = append(g.readers, read)
}

func execOnly(br pgx.BatchResults) error {
	_, err := br.Exec()
	return err
}

// applyGroup runs ops in one transaction and sets each op's err (a per-operation refusal such as
// ErrLeaseLost) and effects. It returns an error when the transaction as a whole failed.
func (s *Store) applyGroup(ops []*writeOp) (err error) {
	if s.observers.Active() {
		start := time.Now()
		// synchronous_commit is on: a committed group waited for its WAL flush.
		defer func() {
			s.observers.Tell(store.Transaction{Writes: len(ops), Duration: time.Since(start), Synced: err == nil})
		}()
	}
	g := &group{s: s}
	// The commit ID of this transaction, which the later statements read with currval.
	g.queue(`SELECT nextval('reprise.lease_tokens')`, execOnly)

	var creates, episodes, completions, sends, entitySends []*writeOp
	for _, o := range ops {
		switch o.kind {
		case opSendEntities:
			entitySends = append(entitySends, o)
		case opCreate:
			creates = append(creates, o)
		case opSend:
			sends = append(sends, o)
		case opEpisode:
			episodes = append(episodes, o)
		case opComplete:
			completions = append(completions, o)
		}
	}
	g.queueCreates(creates)
	g.queueEpisodes(episodes)
	g.queueCompletions(completions)
	g.queueMessages(episodes, sends)
	g.queueEntityMessages(episodes, entitySends)

	// A caller's deadline does not cut a group short: the others still wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br := s.pool.SendBatch(ctx, &g.batch)
	for _, read := range g.readers {
		if err := read(br); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// createsSQL creates the instances of the group's CreateInstance calls that share a reuse policy
// ($16), each with its start message. When the ID exists and the policy allows, it replaces the
// instance: the row is reset (which breaks every lease on it) and the old history, inbox and
// tasks are deleted; an entity is never replaced. It returns, for each instance, whether it was
// created, and the status and kind of the instance that refused it.
var createsSQL = `
WITH c AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::bytea[], $8::bytea[],
		$9::bytea[], $10::bytea[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::bytea[], $15::timestamptz[],
		$18::text[], $19::text[])
		WITH ORDINALITY AS c(id, name, execution_id, parent_id, status, input, output, custom_status, failure,
			created_at, updated_at, start_execution_id, start_data, start_visible_at, version, tags, ord)
),
up AS (
	INSERT INTO reprise.instances AS i (hub, id, name, execution_id, parent_id, status, input, output,
		custom_status, failure, created_at, updated_at, version, tags)
	SELECT $1, c.id, c.name, c.execution_id, c.parent_id, c.status, c.input, c.output, c.custom_status, c.failure,
		coalesce(c.created_at, now()), coalesce(c.updated_at, c.created_at, now()), c.version, c.tags
	FROM c ORDER BY c.ord
	ON CONFLICT (hub, id) DO UPDATE SET ` + replaceInstanceSQL + `
	WHERE i.kind = 0 AND ($16::integer = 2 OR ($16::integer = 0 AND i.status IN (1, 3, 4, 5)))
	RETURNING i.id, i.xmax::text <> '0' AS replaced
),
old_history AS (DELETE FROM reprise.history h USING up
	WHERE up.replaced AND h.hub = $1 AND h.instance_id = up.id),
old_inbox AS (DELETE FROM reprise.inbox m USING up
	WHERE up.replaced AND m.hub = $1 AND m.instance_id = up.id),
old_tasks AS (DELETE FROM reprise.tasks t USING up
	WHERE up.replaced AND t.hub = $1 AND t.instance_id = up.id),
start AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name)
	SELECT $1, c.id, c.start_execution_id, c.start_data, coalesce(c.start_visible_at, now()), c.name
	FROM c JOIN up ON up.id = c.id ORDER BY c.ord
)
SELECT c.id, up.id IS NOT NULL, s.status, s.kind,
	(SELECT count(pg_notify($17, 'o:')) WHERE EXISTS (SELECT 1 FROM up)) + ` + changedSQL("$17", "SELECT id FROM up") + `
FROM c LEFT JOIN up ON up.id = c.id
	LEFT JOIN reprise.instances s ON s.hub = $1 AND s.id = c.id`

// replaceInstanceSQL resets a replaced instance to the new one, free of leases and history.
const replaceInstanceSQL = `
		name = excluded.name, execution_id = excluded.execution_id, parent_id = excluded.parent_id,
		status = excluded.status, input = excluded.input, output = excluded.output,
		custom_status = excluded.custom_status, failure = excluded.failure,
		version = excluded.version, tags = excluded.tags, created_at = excluded.created_at, updated_at = excluded.updated_at, history_len = 0, history_next = 0,
		lease_owner = NULL, lease_epoch = 0, lease_token = 0, lease_expires = '-infinity', commit_id = 0,
		sticky_owner = NULL`

// queueCreates queues the CreateInstance operations, a statement per reuse policy.
func (g *group) queueCreates(ops []*writeOp) {
	for policy := store.ReuseIfFinished; policy <= store.ReuseAlways; policy++ {
		var batch []*writeOp
		for _, o := range ops {
			if o.policy == policy {
				batch = append(batch, o)
			}
		}
		if len(batch) == 0 {
			continue
		}
		n := len(batch)
		ids, names, execs, parents, startExecs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		statuses := make([]int16, n)
		inputs, outputs, customs, failures, startData := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		created, updated, startVisible := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		versions, tags := make([]string, n), make([]pgtype.Text, n)
		byID := make(map[string]*writeOp, n)
		for i, o := range batch {
			in := o.inst
			ids[i], names[i], execs[i], parents[i], statuses[i] = in.ID, in.Name, in.ExecutionID, in.ParentID, int16(in.Status)
			inputs[i], outputs[i], customs[i], failures[i] = in.Input, in.Output, in.CustomStatus, in.Failure
			created[i], updated[i] = ts(in.CreatedAt), ts(in.UpdatedAt)
			startExecs[i], startData[i], startVisible[i] = o.msg.ExecutionID, nonNil(o.msg.Data), ts(o.msg.VisibleAt)
			versions[i], tags[i] = in.Version, tagsText(in.Tags)
			byID[in.ID] = o
		}
		g.queue(createsSQL, func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				var ok bool
				var old, oldKind *int16
				var notified *int64
				if err := rows.Scan(&id, &ok, &old, &oldKind, &notified); err != nil {
					return err
				}
				o := byID[id]
				if !ok {
					o.err = refused(id, o.policy, old, oldKind)
					continue
				}
				o.eff.orchestration = true
				o.eff.changed = append(o.eff.changed, id)
			}
			return rows.Err()
		}, g.s.hub, ids, names, execs, parents, statuses, inputs, outputs, customs, failures, created, updated,
			startExecs, startData, startVisible, int32(policy), g.s.channel, versions, tags)
	}
}

// startSQL starts a sub-orchestration for an episode: only if the parent ($17) passed its fence in
// this transaction; like a create with ReuseIfFinished, except that when an active instance (or
// an entity, whatever its status) holds the ID it delivers the OnConflict message ($18..$21)
// instead.
var startSQL = `
WITH parent AS (
	SELECT 1 WHERE EXISTS (SELECT 1 FROM reprise.instances
		WHERE hub = $1 AND id = $17 AND commit_id = currval('reprise.lease_tokens'))
),
up AS (
	INSERT INTO reprise.instances AS i (hub, id, name, execution_id, parent_id, status, input, output,
		custom_status, failure, created_at, updated_at, version, tags)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11::timestamptz, now()),
		coalesce($12::timestamptz, $11::timestamptz, now()), $22, $23
	FROM parent
	ON CONFLICT (hub, id) DO UPDATE SET ` + replaceInstanceSQL + `
	WHERE i.kind = 0 AND i.status IN (1, 3, 4, 5)
	RETURNING i.id, i.xmax::text <> '0' AS replaced
),
old_history AS (DELETE FROM reprise.history WHERE hub = $1 AND instance_id = $2 AND (SELECT replaced FROM up)),
old_inbox AS (DELETE FROM reprise.inbox WHERE hub = $1 AND instance_id = $2 AND (SELECT replaced FROM up)),
old_tasks AS (DELETE FROM reprise.tasks WHERE hub = $1 AND instance_id = $2 AND (SELECT replaced FROM up)),
start AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name)
	SELECT $1, $2, $13, $14, coalesce($15::timestamptz, now()), $3 FROM up
),
conflict AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name, kind)
	SELECT $1, $18, $19, $20, coalesce($21::timestamptz, now()), r.name, r.kind FROM parent, reprise.instances r
	WHERE $18::text <> '' AND NOT EXISTS (SELECT 1 FROM up) AND r.hub = $1 AND r.id = $18
	RETURNING kind
)
SELECT EXISTS (SELECT 1 FROM up), (SELECT kind FROM conflict),
	(SELECT count(pg_notify($16, p)) FROM (SELECT 'o:' FROM up
		UNION SELECT CASE WHEN kind = 1 THEN 'e:' ELSE 'o:' END FROM conflict) n(p))
	+ ` + changedSQL("$16", "SELECT id FROM up")

// queueStart queues the start of a sub-orchestration by the episode o.
func (g *group) queueStart(o *writeOp, st store.Start) {
	inst, m, c := st.Instance, st.Message, st.OnConflict
	g.queue(startSQL, func(br pgx.BatchResults) error {
		var created bool
		var conflict *int16
		var notified int64
		if err := br.QueryRow().Scan(&created, &conflict, &notified); err != nil {
			return err
		}
		if created {
			o.eff.changed = append(o.eff.changed, inst.ID)
			o.eff.orchestration = true
		}
		if conflict != nil {
			o.eff.work(store.Kind(*conflict))
		}
		return nil
	}, g.s.hub, inst.ID, inst.Name, inst.ExecutionID, inst.ParentID, int16(inst.Status),
		inst.Input, inst.Output, inst.CustomStatus, inst.Failure, ts(inst.CreatedAt), ts(inst.UpdatedAt),
		m.ExecutionID, nonNil(m.Data), ts(m.VisibleAt), g.s.channel,
		o.ep.Instance.ID, c.InstanceID, c.ExecutionID, nonNil(c.Data), ts(c.VisibleAt), inst.Version, tagsText(inst.Tags))
}

func refused(id string, policy store.ReusePolicy, old, oldKind *int16) error {
	if oldKind != nil && store.Kind(*oldKind) == store.KindEntity {
		return fmt.Errorf("postgres: create instance %q: %w: an entity has that ID, and entities are never replaced; choose another ID", id, store.ErrInstanceExists)
	}
	status := "unknown"
	if old != nil {
		status = store.Status(*old).String()
	}
	if policy == store.ReuseNever {
		return fmt.Errorf("postgres: create instance %q: %w (status %s; the reuse policy forbids replacing it)", id, store.ErrInstanceExists, status)
	}
	return fmt.Errorf("postgres: create instance %q: %w and is %s; wait for it to finish or terminate it first", id, store.ErrInstanceExists, status)
}

// episodeSQL commits every episode of the group in one statement. The fenced update changes an
// instance only if it still carries the episode's lease, stamps it with this transaction's commit
// ID (for the starts and messages that follow) and releases the lease; the other parts of an
// episode (history, consumed messages, tasks) join on what the update returned, so an episode
// that lost its lease leaves no trace. The self-join reads the old row, to tell watchers only
// about real changes.
//
// History chunks are numbered from history_next, which only grows: a reset deletes the chunks
// below it in the same statement that inserts the new ones above it, so the two never collide.
//
// pending tells, for each committed instance, whether messages arrived while it was leased: they
// found it unclaimable and their wake-up was spent, so the dispatcher must look again.
var episodeSQL = `
WITH e AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::smallint[],
		$9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[], $13::timestamptz[], $14::boolean[], $15::integer[],
		$27::text[])
		AS e(id, owner, token, name, execution_id, parent_id, status, input, output, custom_status, failure,
			updated_at, reset, appended, version)
),
u AS (
	UPDATE reprise.instances i SET
		name = e.name, execution_id = e.execution_id, parent_id = e.parent_id, status = e.status,
		input = e.input, output = e.output, custom_status = e.custom_status, failure = e.failure,
		version = e.version, updated_at = coalesce(e.updated_at, now()),
		history_len = (CASE WHEN e.reset THEN 0 ELSE i.history_len END) + e.appended,
		history_next = i.history_next + e.appended,
		lease_owner = NULL, lease_epoch = 0, lease_token = 0, lease_expires = '-infinity',
		commit_id = currval('reprise.lease_tokens'), sticky_owner = e.owner
	FROM e JOIN reprise.instances o ON o.hub = $1 AND o.id = e.id
	WHERE i.hub = $1 AND i.id = e.id AND i.lease_token = e.token AND i.lease_owner = e.owner
	RETURNING i.id, i.kind, i.history_next, e.reset, e.appended, (o.status <> e.status OR o.output IS DISTINCT FROM e.output
		OR o.custom_status IS DISTINCT FROM e.custom_status) AS changed, e.owner, o.lease_epoch AS epoch
),
old_history AS (
	DELETE FROM reprise.history h USING u
	WHERE u.reset AND h.hub = $1 AND h.instance_id = u.id AND h.idx < u.history_next - u.appended
),
history AS (
	INSERT INTO reprise.history (hub, instance_id, idx, data)
	SELECT $1, c.id, u.history_next - c.back, c.data
	FROM unnest($17::text[], $18::integer[], $19::bytea[]) AS c(id, back, data) JOIN u ON u.id = c.id
),
consumed AS (
	DELETE FROM reprise.inbox m USING unnest($20::text[], $21::bigint[]) AS c(id, msg) JOIN u ON u.id = c.id
	WHERE m.id = c.msg AND m.hub = $1 AND m.instance_id = c.id
),
tasks AS (
	INSERT INTO reprise.tasks (hub, instance_id, execution_id, name, data, lease_owner, lease_epoch, lease_token, lease_expires)
	SELECT $1, t.instance_id, t.execution_id, t.name, t.data,
		CASE WHEN t.lease_for > 0 THEN u.owner END,
		CASE WHEN t.lease_for > 0 THEN u.epoch ELSE 0 END,
		CASE WHEN t.lease_for > 0 THEN currval('reprise.lease_tokens') ELSE 0 END,
		CASE WHEN t.lease_for > 0 THEN now() + t.lease_for * interval '1 microsecond' ELSE '-infinity' END
	FROM unnest($22::text[], $23::text[], $24::text[], $25::bytea[], $26::text[], $28::bigint[])
		WITH ORDINALITY AS t(instance_id, execution_id, name, data, src_id, lease_for, ord)
		JOIN u ON u.id = t.src_id
	ORDER BY t.ord
	RETURNING id, instance_id, lease_owner IS NOT NULL AS leased, lease_token
)
SELECT u.id, u.kind, u.changed, (SELECT count(*) FROM tasks WHERE NOT leased),
	EXISTS (SELECT 1 FROM reprise.inbox p WHERE p.hub = $1 AND p.instance_id = u.id AND p.visible_at <= now()
		AND p.id <> ALL($21::bigint[])),
	` + changedSQL("$16", "SELECT id FROM u WHERE changed") + `
	+ (SELECT count(pg_notify($16, 'a')) WHERE EXISTS (SELECT 1 FROM tasks WHERE NOT leased)),
	-- The tasks leased to the committer, in ID order, which is the order of insertion (ord):
	-- a leased task is always its own instance's (see queueEpisodes).
	(SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}') FROM tasks x WHERE x.leased AND x.instance_id = u.id),
	(SELECT coalesce(array_agg(x.lease_token ORDER BY x.id), '{}') FROM tasks x WHERE x.leased AND x.instance_id = u.id)
FROM u`

func (g *group) queueEpisodes(ops []*writeOp) {
	if len(ops) == 0 {
		return
	}
	n := len(ops)
	var (
		ids, owners, names, execs, parents = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		tokens                             = make([]int64, n)
		statuses                           = make([]int16, n)
		inputs, outputs, customs, failures = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		updated                            = make([]pgtype.Timestamptz, n)
		resets                             = make([]bool, n)
		appended                           = make([]int32, n)
		versions                           = make([]string, n)

		histIDs                                     = []string{}
		histBack                                    = []int32{}
		histData                                    = [][]byte{}
		consumedIDs                                 = []string{}
		consumedMsgs                                = []int64{}
		taskTargets, taskExecs, taskNames, taskSrcs = []string{}, []string{}, []string{}, []string{}
		taskData                                    = [][]byte{}
		taskLeaseFor                                = []int64{}
		byID                                        = make(map[string]*writeOp, n)
		hasStarts                                   bool
	)
	var merged []*writeOp
	for i, o := range ops {
		e := o.ep
		in := e.Instance
		lease := committer(e)
		ids[i], owners[i], tokens[i] = in.ID, lease.Owner, lease.Token
		names[i], execs[i], parents[i], statuses[i] = in.Name, in.ExecutionID, in.ParentID, int16(in.Status)
		inputs[i], outputs[i], customs[i], failures[i] = in.Input, in.Output, in.CustomStatus, in.Failure
		updated[i], versions[i] = ts(in.UpdatedAt), in.Version
		resets[i], appended[i] = e.ResetHistory, int32(len(e.History))
		byID[in.ID] = o
		for k, chunk := range e.History {
			// Counted back from the new history_next, which the fenced update returns.
			histIDs = append(histIDs, in.ID)
			histBack = append(histBack, int32(len(e.History)-k))
			histData = append(histData, nonNil(chunk))
		}
		for _, mid := range e.Consumed {
			consumedIDs = append(consumedIDs, in.ID)
			consumedMsgs = append(consumedMsgs, mid)
		}
		o.leased = nil
		var leaseFor []int64 // per task: microseconds of its lease, 0 for none
		if tl := e.LeaseTasks; tl != nil && len(tl.Tasks) > 0 {
			leaseFor = make([]int64, len(e.Tasks))
			for _, k := range tl.Tasks {
				leaseFor[k] = max(micros(tl.For), 1)
			}
		}
		for k, t := range e.Tasks {
			if t.InstanceID == "" {
				t.InstanceID = in.ID
			}
			var lf int64
			if leaseFor != nil && t.InstanceID == in.ID { // another instance's task is inserted unleased
				lf = leaseFor[k]
			}
			taskLeaseFor = append(taskLeaseFor, lf)
			taskTargets = append(taskTargets, t.InstanceID)
			taskExecs = append(taskExecs, t.ExecutionID)
			taskNames = append(taskNames, t.Name)
			taskData = append(taskData, nonNil(t.Data))
			taskSrcs = append(taskSrcs, in.ID)
		}
		hasStarts = hasStarts || len(e.Starts) > 0
		// Until the fenced update says otherwise, the episode lost its lease.
		o.err = fmt.Errorf("postgres: commit episode of %q: %w (the instance was claimed again, replaced or purged); drop this episode", in.ID, store.ErrLeaseLost)
		if e.Completes != nil {
			merged = append(merged, o)
		}
	}
	// Merged completions take their instances first, under the lease that the fenced update
	// below then presents for them.
	g.queueMerges(merged)
	g.queue(episodeSQL, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var kind int16
			var changed, pending bool
			var tasks int64
			var notified *int64
			var leasedIDs, leasedTokens []int64
			if err := rows.Scan(&id, &kind, &changed, &tasks, &pending, &notified, &leasedIDs, &leasedTokens); err != nil {
				return err
			}
			o := byID[id]
			o.err = nil
			o.leased = leasedWork(o.ep, leasedIDs, leasedTokens)
			if changed {
				o.eff.changed = append(o.eff.changed, id)
			}
			o.eff.activity = o.eff.activity || tasks > 0
			if pending {
				o.eff.work(store.Kind(kind))
			}
		}
		return rows.Err()
	}, g.s.hub, ids, owners, tokens, names, execs, parents, statuses, inputs, outputs, customs, failures,
		updated, resets, appended, g.s.channel, histIDs, histBack, histData, consumedIDs, consumedMsgs,
		taskTargets, taskExecs, taskNames, taskData, taskSrcs, versions, taskLeaseFor)

	if hasStarts {
		// Before the episodes' messages, so that messages to the new instances find them.
		for _, o := range ops {
			for _, st := range o.ep.Starts {
				g.queueStart(o, st)
			}
		}
	}
}

// wakeSQL is the payload for a message to instance i, of its kind (orchestration or entity work):
// addressed to its sticky owner while that host is alive and renewing, else to anyone.
const wakeSQL = `CASE WHEN i.kind = 1 THEN 'e:' ELSE 'o:' END || CASE WHEN EXISTS (SELECT 1 FROM reprise.hosts h WHERE h.hub = i.hub AND h.owner = i.sticky_owner
	AND h.renewed AND h.expires > now()) THEN i.sticky_owner ELSE '' END`

// completeSQL deletes the tasks whose lease still holds and delivers their results.
const completeSQL = `
WITH c AS (
	SELECT * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bytea[], $8::timestamptz[])
		WITH ORDINALITY AS c(task_id, owner, token, instance_id, execution_id, data, visible_at, ord)
),
done AS (
	DELETE FROM reprise.tasks t USING c
	WHERE t.id = c.task_id AND t.hub = $1 AND t.lease_token = c.token AND t.lease_owner = c.owner
	RETURNING t.id, t.instance_id
),
ins AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name, kind)
	SELECT $1, x.instance_id, c.execution_id, c.data, coalesce(c.visible_at, now()), t.name, t.kind
	FROM c JOIN done d ON d.id = c.task_id
	CROSS JOIN LATERAL (SELECT CASE WHEN c.instance_id = '' THEN d.instance_id ELSE c.instance_id END AS instance_id) x
	-- The message carries its instance's name (claims by name), and goes only to an instance that
	-- exists (the task's own does: replacing or purging an instance deletes its tasks).
	JOIN reprise.instances t ON t.hub = $1 AND t.id = x.instance_id
	ORDER BY c.ord
	RETURNING instance_id, kind
)
SELECT d.id, (SELECT bool_or(kind = 1) FROM ins), (SELECT count(pg_notify($9, w.p)) FROM (
	SELECT DISTINCT ` + wakeSQL + ` AS p FROM (SELECT DISTINCT instance_id FROM ins) t
	JOIN reprise.instances i ON i.hub = $1 AND i.id = t.instance_id) w)
FROM done d`

func (g *group) queueCompletions(ops []*writeOp) {
	if len(ops) == 0 {
		return
	}
	n := len(ops)
	taskIDs, tokens := make([]int64, n), make([]int64, n)
	owners, targets, execs := make([]string, n), make([]string, n), make([]string, n)
	data := make([][]byte, n)
	visible := make([]pgtype.Timestamptz, n)
	byTask := make(map[int64]*writeOp, n)
	for i, o := range ops {
		taskIDs[i], owners[i], tokens[i] = o.taskID, o.lease.Owner, o.lease.Token
		targets[i], execs[i], data[i], visible[i] = o.msg.InstanceID, o.msg.ExecutionID, nonNil(o.msg.Data), ts(o.msg.VisibleAt)
		byTask[o.taskID] = o
		o.err = fmt.Errorf("postgres: complete activity task %d: %w (claimed again, or its instance was replaced or purged); drop the result", o.taskID, store.ErrLeaseLost)
	}
	g.queue(completeSQL, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var entity *bool
			var notified *int64
			if err := rows.Scan(&id, &entity, &notified); err != nil {
				return err
			}
			o := byTask[id]
			o.err = nil
			o.eff.orchestration = true
			o.eff.entity = o.eff.entity || (entity != nil && *entity)
		}
		return rows.Err()
	}, g.s.hub, taskIDs, owners, tokens, targets, execs, data, visible, g.s.channel)
}

// messagesSQL inserts the messages of the group: those of episodes ($6 names the producing
// instance) only if the episode passed its fence, those of SendMessage ($6 = ”) always; messages
// to instances that do not exist are dropped, as Durable Functions drops events raised to unknown
// instances. It returns the instances that received a message.
const messagesSQL = `
WITH m AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::text[])
		WITH ORDINALITY AS m(instance_id, execution_id, data, visible_at, src_id, ord)
),
ins AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name, kind)
	SELECT $1, m.instance_id, m.execution_id, m.data, coalesce(m.visible_at, now()), t.name, t.kind
	FROM m JOIN reprise.instances t ON t.hub = $1 AND t.id = m.instance_id
	WHERE (m.src_id = '' OR EXISTS (SELECT 1 FROM reprise.instances p
			WHERE p.hub = $1 AND p.id = m.src_id AND p.commit_id = currval('reprise.lease_tokens')))
	ORDER BY m.ord
	RETURNING instance_id
)
SELECT i.id, i.kind, (SELECT count(pg_notify($7, p)) FROM (SELECT ` + wakeSQL + ` AS p) n)
FROM (SELECT DISTINCT instance_id FROM ins) t JOIN reprise.instances i ON i.hub = $1 AND i.id = t.instance_id`

func (g *group) queueMessages(episodes, sends []*writeOp) {
	var targets, execs, srcs, entities []string
	var data [][]byte
	var visible []pgtype.Timestamptz
	add := func(m store.Message, src string) {
		if _, _, ok := store.ParseEntityInstanceID(m.InstanceID); ok {
			entities = append(entities, m.InstanceID)
		}
		targets = append(targets, m.InstanceID)
		execs = append(execs, m.ExecutionID)
		data = append(data, nonNil(m.Data))
		visible = append(visible, ts(m.VisibleAt))
		srcs = append(srcs, src)
	}
	var producers []*writeOp
	for _, o := range episodes {
		for _, m := range o.ep.Messages {
			if m.InstanceID == "" {
				m.InstanceID = o.ep.Instance.ID
			}
			add(m, o.ep.Instance.ID)
			producers = append(producers, o)
		}
	}
	for _, o := range sends {
		add(o.msg, "")
		o.err = fmt.Errorf("postgres: send message to %q: %w", o.msg.InstanceID, store.ErrNotFound)
	}
	if len(targets) == 0 {
		return
	}
	if len(entities) > 0 {
		// Messages to entities keep them from DeleteEntity until the transaction ends, as
		// SendEntityMessages does (see entityLockSQL); messages to orchestrations need no lock.
		g.queue(entityLockSQL, execOnly, g.s.hub, entities)
	}
	g.queue(messagesSQL, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		received := make(map[string]store.Kind)
		for rows.Next() {
			var id string
			var kind int16
			var notified int64
			if err := rows.Scan(&id, &kind, &notified); err != nil {
				return err
			}
			received[id] = store.Kind(kind)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, o := range sends {
			if kind, ok := received[o.msg.InstanceID]; ok {
				o.err = nil
				o.eff.work(kind)
			}
		}
		if len(producers) > 0 {
			for _, kind := range received {
				producers[0].eff.work(kind)
			}
		}
		return nil
	}, g.s.hub, targets, execs, data, visible, srcs, g.s.channel)
}

// entityLockSQL takes a share of the key of each existing entity that the group's entity
// messages go to, until the transaction ends: DeleteEntity (FOR UPDATE) then waits for the
// transaction and sees its messages, instead of deleting the entity between entityCreateSQL,
// which found it, and entityMessagesSQL, which would then find it gone. A share of the key
// conflicts with no other share and no update of an instance (commits and claims change no key),
// only with DeleteEntity's lock and deletes; the rows are locked in ID order all the same.
const entityLockSQL = `
SELECT count(*) FROM (SELECT 1 FROM reprise.instances t
	WHERE t.hub = $1 AND t.id = ANY($2::text[]) AND t.kind = 1 ORDER BY t.id FOR KEY SHARE) x`

// entityCreateSQL creates the entities that the group's entity messages go to and that do not
// exist yet: running, without state, named by their IDs. Like messagesSQL, it serves episodes
// ($3 names the producing instance) only if they passed their fence, and SendEntityMessages
// ($3 empty) always. An ID that an orchestration holds is left alone.
//
// It is a statement of its own, before entityMessagesSQL: an entity created by another
// transaction while this one waited on its key is visible only to a later statement.
const entityCreateSQL = `
INSERT INTO reprise.instances (hub, id, kind, name, execution_id, parent_id, status, created_at, updated_at)
SELECT DISTINCT ON (e.id) $1, e.id, 1, e.name, '', '', 0, now(), now()
FROM unnest($2::text[], $3::text[], $4::text[]) AS e(id, src_id, name)
WHERE e.src_id = '' OR EXISTS (SELECT 1 FROM reprise.instances p
	WHERE p.hub = $1 AND p.id = e.src_id AND p.commit_id = currval('reprise.lease_tokens'))
ORDER BY e.id
ON CONFLICT (hub, id) DO NOTHING`

// entityMessagesSQL delivers the group's entity messages, in order, to the entities they go to
// (which entityCreateSQL made sure of; a message to an ID an orchestration holds is dropped). Like
// entityLockSQL, it holds a share of each entity's key (one created meanwhile by another
// transaction included) until the transaction ends. It returns the entities that received a
// message.
const entityMessagesSQL = `
WITH m AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::text[])
		WITH ORDINALITY AS m(instance_id, execution_id, data, visible_at, src_id, ord)
),
ins AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name, kind)
	SELECT $1, m.instance_id, m.execution_id, m.data, coalesce(m.visible_at, now()), t.name, 1
	FROM m CROSS JOIN LATERAL (SELECT t.name FROM reprise.instances t
		WHERE t.hub = $1 AND t.id = m.instance_id AND t.kind = 1 FOR KEY SHARE) t
	WHERE (m.src_id = '' OR EXISTS (SELECT 1 FROM reprise.instances p
			WHERE p.hub = $1 AND p.id = m.src_id AND p.commit_id = currval('reprise.lease_tokens')))
	ORDER BY m.ord
	RETURNING instance_id
)
SELECT i.id, (SELECT count(pg_notify($7, p)) FROM (SELECT ` + wakeSQL + ` AS p) n)
FROM (SELECT DISTINCT instance_id FROM ins) t JOIN reprise.instances i ON i.hub = $1 AND i.id = t.instance_id`

// queueEntityMessages queues the entity messages of the episodes (after their other messages)
// and of the SendEntityMessages calls, each call's in its order.
func (g *group) queueEntityMessages(episodes, sends []*writeOp) {
	var targets, execs, srcs, names []string
	var data [][]byte
	var visible []pgtype.Timestamptz
	var producers []*writeOp
	add := func(m store.Message, src string) {
		name, _, _ := store.ParseEntityInstanceID(m.InstanceID)
		targets = append(targets, m.InstanceID)
		execs = append(execs, m.ExecutionID)
		data = append(data, nonNil(m.Data))
		visible = append(visible, ts(m.VisibleAt))
		srcs = append(srcs, src)
		names = append(names, name)
	}
	for _, o := range episodes {
		for _, m := range o.ep.EntityMessages {
			add(m, o.ep.Instance.ID)
		}
		if len(o.ep.EntityMessages) > 0 {
			producers = append(producers, o)
		}
	}
	for _, o := range sends {
		for _, m := range o.msgs {
			add(m, "")
		}
	}
	if len(targets) == 0 {
		return
	}
	g.queue(entityLockSQL, execOnly, g.s.hub, targets)
	g.queue(entityCreateSQL, execOnly, g.s.hub, targets, srcs, names)
	g.queue(entityMessagesSQL, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		received := false
		for rows.Next() {
			var id string
			var notified int64
			if err := rows.Scan(&id, &notified); err != nil {
				return err
			}
			received = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if received {
			// Whichever operations' messages arrived, one local wake-up serves them all.
			for _, o := range append(producers, sends...) {
				o.eff.entity = true
			}
		}
		return nil
	}, g.s.hub, targets, execs, data, visible, srcs, g.s.channel)
}

// ts is t as a nullable timestamp: the zero time is NULL, which the SQL replaces with now().
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// nonNil keeps NOT NULL columns happy: an empty payload is still a payload.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ObserveTransactions adds a function told of each write transaction (store.TransactionObserver):
// the groups of the writers and the claims, which are transactions of their own. Renewals and
// releases of leases are not reported.
func (s *Store) ObserveTransactions(fn func(store.Transaction)) (remove func()) {
	return s.observers.Add(fn)
}

var _ store.TransactionObserver = (*Store)(nil)

// leasedWork pairs the IDs and tokens of the tasks an episode's commit leased (in ID order, the
// order of insertion) with its tasks, and returns them in the order of its TaskLease.
func leasedWork(e *store.Episode, ids, tokens []int64) []store.ActivityWork {
	tl := e.LeaseTasks
	if tl == nil || len(ids) == 0 {
		return nil
	}
	byIndex := make(map[int]store.ActivityWork, len(ids))
	next := 0
	for k, t := range e.Tasks {
		if !slices.Contains(tl.Tasks, k) || (t.InstanceID != "" && t.InstanceID != e.Instance.ID) {
			continue
		}
		if next == len(ids) {
			break
		}
		t.ID, t.InstanceID = ids[next], e.Instance.ID
		t.Data = nonNil(t.Data)
		byIndex[k] = store.ActivityWork{Task: t, Lease: store.Lease{Owner: committer(e).Owner, Token: tokens[next]}}
		next++
	}
	out := make([]store.ActivityWork, 0, len(byIndex))
	for _, k := range tl.Tasks {
		if w, ok := byIndex[k]; ok {
			out = append(out, w)
		}
	}
	return out
}
