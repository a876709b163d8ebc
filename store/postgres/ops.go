package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/store"
)

// CreateInstance creates an instance with its start message, applying the reuse policy.
func (s *Store) CreateInstance(ctx context.Context, inst store.Instance, start store.Message, policy store.ReusePolicy) error {
	if err := store.CheckCreate(inst, policy); err != nil {
		return fmt.Errorf("postgres: create instance: %w", err)
	}
	return s.do(ctx, &writeOp{kind: opCreate, inst: inst, msg: start, policy: policy})
}

// SendMessage adds a message to an existing instance's inbox.
func (s *Store) SendMessage(ctx context.Context, m store.Message) error {
	if err := store.CheckID(m.InstanceID); err != nil {
		return fmt.Errorf("postgres: send message: %w", err)
	}
	return s.do(ctx, &writeOp{kind: opSend, msg: m})
}

// SendEntityMessages delivers messages to entities in order, creating those that do not exist.
func (s *Store) SendEntityMessages(ctx context.Context, msgs []store.Message) error {
	for _, m := range msgs {
		if err := store.CheckEntityMessage(m); err != nil {
			return fmt.Errorf("postgres: send entity messages: %w", err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.do(ctx, &writeOp{kind: opSendEntities, msgs: msgs})
}

// deleteEntitySQL removes an entity that has no state, no live lease, no message and the update
// time $3, with its history. The lock taken first (deleteEntityLockSQL, FOR UPDATE, in the same
// transaction) waits for the transactions delivering messages to the entity, which hold a share
// of its key (see entityLockSQL); the delete, a statement of its own with a new snapshot, then
// sees their messages and keeps the entity.
const deleteEntityLockSQL = `SELECT 1 FROM reprise.instances WHERE hub = $1 AND id = $2 AND kind = 1 FOR UPDATE`

var deleteEntitySQL = `
WITH d AS (
	DELETE FROM reprise.instances i
	WHERE i.hub = $1 AND i.id = $2 AND i.kind = 1 AND i.output IS NULL AND i.updated_at = $3
		AND NOT ` + live("i") + `
		AND NOT EXISTS (SELECT 1 FROM reprise.inbox m WHERE m.hub = $1 AND m.instance_id = $2)
	RETURNING i.id
),
dh AS (DELETE FROM reprise.history h USING d WHERE h.hub = $1 AND h.instance_id = d.id)
SELECT count(*), ` + changedSQL("$4", "SELECT id FROM d") + ` FROM d`

// DeleteEntity removes an entity without state, lease or messages that was last updated at
// updatedAt.
func (s *Store) DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error) {
	if s.isClosed() {
		return false, errClosed("delete entity")
	}
	if err := store.CheckID(id); err != nil {
		return false, fmt.Errorf("postgres: delete entity: %w", err)
	}
	if updatedAt.IsZero() {
		return false, nil // no entity was updated at the zero time
	}
	b := &pgx.Batch{}
	b.Queue(deleteEntityLockSQL, s.hub, id)
	b.Queue(deleteEntitySQL, s.hub, id, updatedAt, s.channel)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var n int64
	if err == nil {
		err = br.QueryRow().Scan(&n, nil)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, s.dbErr(fmt.Sprintf("delete entity %q", id), err)
	}
	if n > 0 {
		s.notifier.Changed(id)
	}
	return n > 0, nil
}

// CommitEpisode applies an episode atomically if its lease still holds, and releases the lease.
// A merged completion (e.Completes) takes the instance and completes its task in the same
// transaction instead (see merged.go).
func (s *Store) CommitEpisode(ctx context.Context, e store.Episode) error {
	if err := store.CheckEpisode(e); err != nil {
		return fmt.Errorf("postgres: commit episode: %w", err)
	}
	id := e.Instance.ID
	if s.isClosed() {
		return errClosed("commit episode")
	}
	if e.Completes == nil && (e.Lease.Token == 0 || e.Lease.Owner == "") {
		return fmt.Errorf("postgres: commit episode of %q: %w (no lease given)", id, store.ErrLeaseLost)
	}
	o := &writeOp{kind: opEpisode, ep: &e}
	if err := s.do(ctx, o); err != nil {
		return err
	}
	if e.LeaseTasks != nil {
		e.LeaseTasks.Leased = o.leased // read once the writer has answered
	}
	return nil
}

// CompleteActivity deletes the task and delivers its result, if the lease still holds.
func (s *Store) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	return s.do(ctx, &writeOp{kind: opComplete, taskID: taskID, lease: lease, msg: result})
}

// Hosts and epochs (see the hosts table in schema.go). hostSQL starts a new epoch for owner: the
// first claim or renewal through this store does, so that the leases of an earlier incarnation
// of the owner die. $3 is the epoch this store knows (0: none); a renewal ($5 true) with the
// known epoch keeps it and sets the owner's expiry to now+$4 microseconds. The owner's expiry
// decides sticky routing only (leases live by their own expiry); a claim leaves it in the past,
// so that an owner that never renews attracts no sticky routing.
const hostSQL = `
INSERT INTO reprise.hosts AS h (hub, owner, epoch, expires, renewed)
VALUES ($1, $2, nextval('reprise.host_epochs'),
	CASE WHEN $5 THEN now() + $4 * interval '1 microsecond' ELSE '-infinity' END, $5)
ON CONFLICT (hub, owner) DO UPDATE SET
	epoch = CASE WHEN h.epoch = $3 THEN h.epoch ELSE excluded.epoch END,
	expires = CASE WHEN $5 OR h.epoch <> $3 THEN excluded.expires ELSE h.expires END,
	renewed = $5 OR (h.renewed AND h.epoch = $3),
	announced = now()
RETURNING h.epoch`

// liveSQL is true when the lease on row X (an instance or a task) is live: it has not expired,
// and its owner's hosts row still has the lease's epoch. The owner's own liveness does not keep
// a lease alive: RenewLeases extends the leases the owner still works on, one by one, so that
// one it gave up on expires while the owner lives on.
const liveSQL = `(X.lease_owner IS NOT NULL AND X.lease_expires > now() AND EXISTS (SELECT 1 FROM reprise.hosts h
	WHERE h.hub = X.hub AND h.owner = X.lease_owner AND h.epoch = X.lease_epoch))`

func live(x string) string { return strings.ReplaceAll(liveSQL, "X.", x+".") }

// named is true when row X's name is one of the text array $N, case-insensitively as
// ListInstances matches Query.Name (lower() on both sides). The ARRAY is uncorrelated, so it is
// computed once per statement, not per row; the name is tested on the row a claim reads anyway.
func named(x string, n int) string {
	return fmt.Sprintf(`lower(%s.name) = ANY(ARRAY(SELECT lower(n) FROM unnest($%d::text[]) n))`, x, n)
}

// claimTokenSQL starts a claim: a fresh lease token, which the claim reads with currval, and
// whether the owner's epoch still stands (ReleaseLeases deletes it).
//
// It also steers the planner, for the rest of the claim's transaction only: a claim must walk its
// index in order and stop at the limit. With few or skewed statistics (a fresh database, before
// autovacuum's first analyze), PostgreSQL may prefer to read every visible message or task (a
// bitmap scan) and sort them, which costs time in proportion to the backlog on every claim; with
// bitmap scans and sorts priced out (and sequential scans, for every statement of the store: see
// Open), the ordered index scan remains.
const claimTokenSQL = `SELECT nextval('reprise.lease_tokens'),
	EXISTS (SELECT 1 FROM reprise.hosts WHERE hub = $1 AND owner = $2 AND epoch = $3),
	set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`

// claimInstancesSQL leases up to $3 instances of a kind (orchestrations or entities: the
// statement of each kind is its own) with visible messages. For each name of $6 in turn, it
// walks that name's messages of the kind in visible order from the oldest (inbox_by_kind_name),
// looks each message's instance up by key, skips those under a live lease or
// sticky to another live host, and stops at the limit: messages of other names are never read.
// SKIP LOCKED lets concurrent claimers pass each other instead of queueing. The lock is FOR NO
// KEY UPDATE, the one the update takes anyway (no key changes): it leaves alone the share of the
// key that a transaction delivering entity messages holds (see entityMessagesSQL), so a busy
// entity is not skipped for as long as signals keep arriving. $4 is the owner's epoch and $5
// the lease duration in microseconds.
//
// The lookup is a LATERAL subquery behind OFFSET 0, which the planner cannot flatten into a join:
// whatever the statistics, it stays one primary-key probe per message. (Statistics taken while
// the table was nearly empty once made the cached plan scan every instance of the hub for each
// message.) The candidates are a MATERIALIZED CTE, read once: as a subquery the planner may
// rescan them for each row it updates, and each rescan would skip the rows just locked and take
// further ones.
var claimInstancesSQL = [...]string{
	store.KindOrchestration: claimInstancesQuery(store.KindOrchestration, "$6::text[]"),
	store.KindEntity:        claimInstancesQuery(store.KindEntity, "$6::text[]"),
}

// claimInstancesExceptSQL is claimInstancesSQL for a claim of every name but those of the text
// array $6 (store.AllNamesExcept): its names are those exceptNames finds with visible messages
// of the kind, rotated by $7.
var claimInstancesExceptSQL = [...]string{
	store.KindOrchestration: claimInstancesQuery(store.KindOrchestration, exceptInstanceNames(store.KindOrchestration)),
	store.KindEntity:        claimInstancesQuery(store.KindEntity, exceptInstanceNames(store.KindEntity)),
}

func exceptInstanceNames(kind store.Kind) string {
	return exceptNames("lower(x.instance_name)", fmt.Sprintf("reprise.inbox x WHERE x.hub = $1 AND x.kind = %d", kind),
		fmt.Sprintf("EXISTS (SELECT 1 FROM reprise.inbox m WHERE m.hub = $1 AND m.kind = %d AND lower(m.instance_name) = s.n AND m.visible_at <= now())", kind), 6, 7)
}

// claimInstancesQuery is the claim of instances of kind; the kind is written into the statement,
// so that each kind's claim has a plan of its own.
func claimInstancesQuery(kind store.Kind, names string) string {
	return `
WITH candidates AS MATERIALIZED (
	SELECT c.id
	FROM unnest(` + names + `) n CROSS JOIN LATERAL (
		SELECT m.instance_id FROM reprise.inbox m
		WHERE m.hub = $1 AND m.kind = ` + strconv.Itoa(int(kind)) + ` AND lower(m.instance_name) = lower(n) AND m.visible_at <= now()
		ORDER BY lower(m.instance_name), m.visible_at, m.id
		OFFSET 0
	) m CROSS JOIN LATERAL (
		SELECT c.id FROM reprise.instances c
		WHERE c.hub = $1 AND c.id = m.instance_id
			AND NOT ` + live("c") + `
			AND (c.sticky_owner IS NULL OR c.sticky_owner = $2 OR NOT EXISTS (SELECT 1 FROM reprise.hosts h
				WHERE h.hub = $1 AND h.owner = c.sticky_owner AND h.renewed AND h.expires > now()))
		OFFSET 0
		FOR NO KEY UPDATE SKIP LOCKED
	) c
	LIMIT $3
)
UPDATE reprise.instances i
SET lease_owner = $2, lease_epoch = $4, lease_token = currval('reprise.lease_tokens'),
	lease_expires = now() + $5 * interval '1 microsecond'
WHERE i.hub = $1 AND i.id = ANY(ARRAY(SELECT id FROM candidates))
	AND EXISTS (SELECT 1 FROM reprise.hosts WHERE hub = $1 AND owner = $2 AND epoch = $4)
RETURNING ` + instanceColumns("i")
}

// exceptNames is the SQL of the text array that a claim of every name but those of the text
// array $excl takes in place of a list of names: the distinct lowered names (key) of the rows of
// from, which is the claim's index (inbox_by_kind_name, tasks_unleased_by_name) with the
// condition that selects the hub's entries (of one kind), that are not excluded and for which ready holds (s.n is the name),
// rotated by the turn $turn. It steps from one name to the next with one index seek each, so it
// reads a few entries per name, whatever the backlog of the excluded names (those another
// dispatcher of the same process serves), and a claim that finds no work costs as many seeks as
// the index has names.
func exceptNames(key, from, ready string, excl, turn int) string {
	return fmt.Sprintf(`(WITH RECURSIVE seen(n) AS (
		SELECT (SELECT %[1]s FROM %[2]s ORDER BY %[1]s LIMIT 1)
		UNION ALL
		SELECT (SELECT %[1]s FROM %[2]s AND %[1]s > s.n ORDER BY %[1]s LIMIT 1) FROM seen s WHERE s.n IS NOT NULL
	), ready AS (
		SELECT array_agg(s.n ORDER BY s.n) AS a FROM seen s
		WHERE s.n IS NOT NULL AND s.n <> ALL(ARRAY(SELECT lower(x) FROM unnest($%[4]d::text[]) x)) AND %[3]s
	)
	SELECT a[1 + ($%[5]d %% cardinality(a))::integer:] || a[:($%[5]d %% cardinality(a))::integer] FROM ready)`,
		key, from, ready, excl, turn)
}

// claimedMessagesSQL reads the messages of just-claimed instances. It runs after the claim's
// commit, with a new snapshot: the claim's own snapshot may predate a commit that consumed a
// message of an instance claimed and released in between, and must not deliver it again.
const claimedMessagesSQL = `
SELECT m.id, m.instance_id, m.execution_id, m.data, m.visible_at
FROM reprise.inbox m
WHERE m.hub = $1 AND m.instance_id = ANY($2::text[]) AND m.visible_at <= now()
ORDER BY m.id`

// ClaimOrchestrations leases up to max orchestration instances with visible messages.
func (s *Store) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	return s.claimInstances(ctx, store.OrchestrationWorkKind, owner, names, max, leaseFor)
}

// ClaimEntities leases up to max entities with visible messages.
func (s *Store) ClaimEntities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	return s.claimInstances(ctx, store.EntityWorkKind, owner, names, max, leaseFor)
}

// claimInstances leases up to max instances of the kind of work kind (orchestrations or
// entities) with visible messages, and reads their messages.
func (s *Store) claimInstances(ctx context.Context, kind store.WorkKind, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	if err := checkClaim(owner, names, max, leaseFor); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	what := "claim " + kind.String() + " work"
	if s.isClosed() {
		return nil, errClosed(what)
	}
	instKind, turns, exceptTurns := store.KindOrchestration, &s.orchTurn, &s.orchExceptTurn
	if kind == store.EntityWorkKind {
		instKind, turns, exceptTurns = store.KindEntity, &s.entTurn, &s.entExceptTurn
	}
	var work []store.OrchestrationWork
	var token int64
	start := time.Now()
	err := s.claim(ctx, owner, func(b *pgx.Batch, epoch int64) func(pgx.BatchResults) error {
		work = work[:0]
		if excluded, ok := names.Except(); ok {
			b.Queue(claimInstancesExceptSQL[instKind], s.hub, owner, max, epoch, micros(leaseFor), excluded, turn(exceptTurns))
		} else {
			b.Queue(claimInstancesSQL[instKind], s.hub, owner, max, epoch, micros(leaseFor), rotate(turns, names))
		}
		return func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				inst, err := scanInstance(rows, &token)
				if err != nil {
					return err
				}
				work = append(work, store.OrchestrationWork{Instance: inst, Lease: store.Lease{Owner: owner, Token: token}})
			}
			return rows.Err()
		}
	})
	s.observeClaim(start, len(work), err)
	if err != nil {
		return nil, s.dbErr(what, err)
	}
	if len(work) == 0 {
		return nil, nil
	}
	slices.SortFunc(work, func(a, b store.OrchestrationWork) int { return strings.Compare(a.Instance.ID, b.Instance.ID) })
	ids := make([]string, len(work))
	index := make(map[string]int, len(work))
	for i := range work {
		ids[i] = work[i].Instance.ID
		index[ids[i]] = i
	}
	fail := func(err error) ([]store.OrchestrationWork, error) {
		s.releaseClaim(kind, owner, token, ids)
		return nil, s.dbErr(what+": read messages", err)
	}
	rows, err := s.pool.Query(ctx, claimedMessagesSQL, s.hub, ids)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var m store.Message
		if err := rows.Scan(&m.ID, &m.InstanceID, &m.ExecutionID, &m.Data, &m.VisibleAt); err != nil {
			rows.Close()
			return fail(err)
		}
		i := index[m.InstanceID]
		work[i].Messages = append(work[i].Messages, m)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	// An instance whose messages another host consumed between this claim's snapshot and its
	// lock has nothing to do: give it back.
	var empty []string
	kept := work[:0]
	for _, w := range work {
		if len(w.Messages) == 0 {
			empty = append(empty, w.Instance.ID)
			continue
		}
		kept = append(kept, w)
	}
	if len(empty) > 0 {
		s.releaseClaim(kind, owner, token, empty)
	}
	return kept, nil
}

// releaseClaim drops the lease of a claim on the instances ids, when the claim cannot be handed
// out, and wakes the local dispatcher of kind in case a message arrived meanwhile.
func (s *Store) releaseClaim(kind store.WorkKind, owner string, token int64, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `UPDATE reprise.instances SET lease_owner = NULL, lease_epoch = 0, lease_token = 0,
			lease_expires = '-infinity'
		WHERE hub = $1 AND id = ANY($2::text[]) AND lease_owner = $3 AND lease_token = $4`, s.hub, ids, owner, token)
	s.notifier.Notify(kind)
}

// claimTasksSQL leases up to $3 tasks: unleased ones first, from tasks_unleased_by_name, each
// name of $7 in turn and in ID order within a name (the outer LIMIT stops the walk, so no more
// rows are locked than taken);
// then, if $6 and only as many as those fell short of (LIMIT 0 reads nothing), leased ones whose
// lease died, from tasks_leased. That second walk reads every running task, so claims take it
// only now and then (see recoverTasks). Both take only tasks of the activities in $7. (FOR UPDATE is not allowed in the branches of a UNION,
// hence the two CTEs.)
var claimTasksSQL = claimTasksQuery("$7::text[]", named("x", 7))

// claimTasksExceptSQL is claimTasksSQL for a claim of every activity but those of the text array
// $7 (store.AllNamesExcept): its names are those exceptNames finds among the unleased tasks
// (every one is ready), rotated by $8, and the tasks whose lease died are those of any other name.
var claimTasksExceptSQL = claimTasksQuery(exceptNames("lower(x.name)", "reprise.tasks x WHERE x.hub = $1 AND x.lease_owner IS NULL", "true", 7, 8),
	"NOT "+named("x", 7))

func claimTasksQuery(names, orphanNamed string) string {
	return `
WITH unleased AS MATERIALIZED (
	SELECT x.id FROM unnest(` + names + `) n CROSS JOIN LATERAL (
		SELECT t.id FROM reprise.tasks t WHERE t.hub = $1 AND t.lease_owner IS NULL AND lower(t.name) = lower(n)
		ORDER BY t.id LIMIT $3 FOR UPDATE SKIP LOCKED
	) x
	LIMIT $3
),
orphaned AS MATERIALIZED (
	SELECT x.id FROM reprise.tasks x WHERE x.hub = $1 AND x.lease_owner IS NOT NULL AND NOT ` + live("x") + `
		AND ` + orphanNamed + `
	ORDER BY x.id LIMIT CASE WHEN $6 THEN $3 - (SELECT count(*) FROM unleased) ELSE 0 END FOR UPDATE SKIP LOCKED
),
candidates AS (SELECT id FROM unleased UNION ALL SELECT id FROM orphaned)
UPDATE reprise.tasks t
SET lease_owner = $2, lease_epoch = $4, lease_token = currval('reprise.lease_tokens'),
	lease_expires = now() + $5 * interval '1 microsecond'
WHERE t.id = ANY(ARRAY(SELECT id FROM candidates))
	AND EXISTS (SELECT 1 FROM reprise.hosts WHERE hub = $1 AND owner = $2 AND epoch = $4)
RETURNING t.id, t.instance_id, t.execution_id, t.name, t.data, t.lease_token`
}

// ClaimActivities leases up to max activity tasks without a live lease.
func (s *Store) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	if err := checkClaim(owner, names, max, leaseFor); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	if s.isClosed() {
		return nil, errClosed("claim activities")
	}
	var work []store.ActivityWork
	start := time.Now()
	err := s.claim(ctx, owner, func(b *pgx.Batch, epoch int64) func(pgx.BatchResults) error {
		work = work[:0]
		if excluded, ok := names.Except(); ok {
			b.Queue(claimTasksExceptSQL, s.hub, owner, max, epoch, micros(leaseFor), s.recoverTasks(), excluded, turn(&s.taskExceptTurn))
		} else {
			b.Queue(claimTasksSQL, s.hub, owner, max, epoch, micros(leaseFor), s.recoverTasks(), rotate(&s.taskTurn, names))
		}
		return func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var t store.Task
				lease := store.Lease{Owner: owner}
				if err := rows.Scan(&t.ID, &t.InstanceID, &t.ExecutionID, &t.Name, &t.Data, &lease.Token); err != nil {
					return err
				}
				work = append(work, store.ActivityWork{Task: t, Lease: lease})
			}
			return rows.Err()
		}
	})
	s.observeClaim(start, len(work), err)
	if err != nil {
		return nil, s.dbErr("claim activities", err)
	}
	slices.SortFunc(work, func(a, b store.ActivityWork) int { return cmp.Compare(a.Task.ID, b.Task.ID) })
	return work, nil
}

// rotate returns names starting from the next one in turn: claims walk their names in order,
// so that no name with a backlog starves the others.
func rotate(turn *atomic.Uint64, names store.Names) []string {
	first := int(turn.Add(1) % uint64(len(names)))
	return append(slices.Clone(names[first:]), names[:first]...)
}

// turn advances a claim of every name but some to its next turn, which exceptNames turns into
// the name it starts from. It stays far from overflowing PostgreSQL's bigint.
func turn(t *atomic.Uint64) int64 { return int64(t.Add(1) % (1 << 62)) }

// recoveryInterval is how often ClaimActivities looks for tasks whose lease died (their owner
// stopped renewing, or released them on another host), at most: it adds that much to the half
// minute a dead host's tasks wait anyway, and spares the claims in between a walk over every
// running task.
const recoveryInterval = 500 * time.Millisecond

// recoverTasks reports whether this task claim should look for tasks whose lease died.
func (s *Store) recoverTasks() bool {
	now := time.Now().UnixNano()
	next := s.recoverAfter.Load()
	return now >= next && s.recoverAfter.CompareAndSwap(next, now+int64(recoveryInterval))
}

// observeClaim tells the transaction observers of a claim transaction that began at start and
// leased n items. Only a claim that leased something changed a row, and so waits for its WAL
// flush at commit (synchronous_commit); an empty one has no transaction ID and commits without
// (except the one in 32 or so whose nextval logs the sequence ahead, which is not counted).
func (s *Store) observeClaim(start time.Time, n int, err error) {
	if !s.observers.Active() {
		return
	}
	tx := store.Transaction{Writes: 1, Duration: time.Since(start), Claims: 1, Synced: err == nil && n > 0}
	if err != nil || n == 0 {
		tx.EmptyClaims = 1
	}
	s.observers.Tell(tx)
}

// claim runs a claim statement (queued by queue, for the owner's epoch) after claimTokenSQL, in
// one transaction and one round trip. If the epoch is gone (ReleaseLeases), the claim took
// nothing; it starts a new epoch and tries once more.
func (s *Store) claim(ctx context.Context, owner string, queue func(b *pgx.Batch, epoch int64) func(pgx.BatchResults) error) error {
	for attempt := 0; ; attempt++ {
		epoch, err := s.ownerEpoch(ctx, owner)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(claimTokenSQL, s.hub, owner, epoch)
		read := queue(b, epoch)
		br := s.pool.SendBatch(ctx, b)
		var token int64
		var standing bool
		err = br.QueryRow().Scan(&token, &standing, nil, nil)
		if err == nil {
			err = read(br)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil || standing || attempt > 0 {
			return err
		}
		s.forgetEpoch(owner, epoch)
	}
}

// ownerEpoch returns owner's epoch, starting one if this store has none for it yet.
func (s *Store) ownerEpoch(ctx context.Context, owner string) (int64, error) {
	if epoch := s.epoch(owner); epoch != 0 {
		return epoch, nil
	}
	// Two first claims at once (the orchestration and the activity dispatcher both starting)
	// would each start an epoch, and the second would kill the leases the first just took.
	s.announceMu.Lock()
	defer s.announceMu.Unlock()
	if epoch := s.epoch(owner); epoch != 0 {
		return epoch, nil
	}
	var epoch int64
	if err := s.pool.QueryRow(ctx, hostSQL, s.hub, owner, int64(0), int64(0), false).Scan(&epoch); err != nil {
		return 0, err
	}
	s.raiseEpoch(owner, epoch)
	return epoch, nil
}

// renewSQL extends the leases of the claims ($3 instance IDs with $4 tokens, $5 task IDs with
// $6 tokens) of owner $2 that still hold, by $7 microseconds.
const renewSQL = `
WITH i AS (
	UPDATE reprise.instances x SET lease_expires = now() + $7 * interval '1 microsecond'
	FROM unnest($3::text[], $4::bigint[]) AS c(id, token)
	WHERE x.hub = $1 AND x.id = c.id AND x.lease_token = c.token AND x.lease_owner = $2
	RETURNING 1
),
t AS (
	UPDATE reprise.tasks x SET lease_expires = now() + $7 * interval '1 microsecond'
	FROM unnest($5::bigint[], $6::bigint[]) AS c(id, token)
	WHERE x.id = c.id AND x.hub = $1 AND x.lease_token = c.token AND x.lease_owner = $2
	RETURNING 1
)
SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM t)`

// RenewLeases extends the leases of the claims that still hold, and announces owner as a live,
// renewing host (sticky routing) by updating its hosts row.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []store.Claim, leaseFor time.Duration) error {
	if owner == "" {
		return errors.New("postgres: renew leases: empty owner")
	}
	if leaseFor <= 0 {
		return fmt.Errorf("postgres: renew leases: lease duration %v is not positive", leaseFor)
	}
	if s.isClosed() {
		return errClosed("renew leases")
	}
	instIDs, instTokens, taskIDs, taskTokens := []string{}, []int64{}, []int64{}, []int64{}
	for _, c := range claims {
		if c.Lease.Owner != owner {
			return fmt.Errorf("postgres: renew leases of %q: a claim of %q is among them", owner, c.Lease.Owner)
		}
		switch c.Kind {
		case store.OrchestrationWorkKind, store.EntityWorkKind:
			instIDs, instTokens = append(instIDs, c.InstanceID), append(instTokens, c.Lease.Token)
		case store.ActivityWorkKind:
			taskIDs, taskTokens = append(taskIDs, c.TaskID), append(taskTokens, c.Lease.Token)
		default:
			return fmt.Errorf("postgres: renew leases: claim of unknown kind %d", int(c.Kind))
		}
	}
	known := s.epoch(owner)
	if known == 0 {
		s.announceMu.Lock() // see ownerEpoch
		defer s.announceMu.Unlock()
		known = s.epoch(owner)
	}
	b := &pgx.Batch{}
	b.Queue(hostSQL, s.hub, owner, known, micros(leaseFor), true)
	if len(claims) > 0 {
		b.Queue(renewSQL, s.hub, owner, instIDs, instTokens, taskIDs, taskTokens, micros(leaseFor))
	}
	// Forget hosts long dead, so the table does not grow with every restart of every host.
	// (A host that never renews has no expiry of its own: its last announcement counts.)
	b.Queue(`DELETE FROM reprise.hosts WHERE hub = $1 AND greatest(expires, announced) < now() - interval '1 day'
		AND owner <> $2`, s.hub, owner)
	br := s.pool.SendBatch(ctx, b)
	var epoch int64
	err := br.QueryRow().Scan(&epoch)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.dbErr("renew leases", err)
	}
	s.raiseEpoch(owner, epoch)
	return nil
}

// ReleaseLeases drops every lease held by owner, by deleting its hosts row: its leases are dead
// at once, and the instances sticky to it are free for any host.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	if owner == "" {
		return errors.New("postgres: release leases: empty owner")
	}
	if s.isClosed() {
		return errClosed("release leases")
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM reprise.hosts WHERE hub = $1 AND owner = $2`, s.hub, owner)
	b.Queue(`SELECT count(pg_notify($1, p)) FROM unnest(ARRAY['o:', 'e:', 'r']) p`, s.channel)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.dbErr("release leases", err)
	}
	// The next claim or renewal by owner starts a new epoch, so these leases stay dead.
	s.ownersMu.Lock()
	if _, ok := s.owners[owner]; ok {
		s.owners[owner] = 0
	}
	s.ownersMu.Unlock()
	s.recoverAfter.Store(0) // the released tasks are claimable at once
	s.notifier.Notify(store.OrchestrationWorkKind)
	s.notifier.Notify(store.ActivityWorkKind)
	s.notifier.Notify(store.EntityWorkKind)
	return nil
}

func checkClaim(owner string, names store.Names, max int, leaseFor time.Duration) error {
	switch {
	case owner == "":
		return errors.New("postgres: claim: empty owner")
	case max <= 0:
		return fmt.Errorf("postgres: claim: max is %d, want at least 1", max)
	case leaseFor <= 0:
		return fmt.Errorf("postgres: claim: lease duration %v is not positive", leaseFor)
	}
	if err := names.Check(); err != nil {
		return fmt.Errorf("postgres: claim: %w", err)
	}
	return nil
}

// purgeSQL deletes finished orchestration instances (those matched by WHERE, at most $2 of them)
// with their history, inbox and tasks. Entities are never purged.
const purgeSQL = `
WITH d AS (
	DELETE FROM reprise.instances WHERE hub = $1 AND (hub, id) IN (
		SELECT hub, id FROM reprise.instances WHERE hub = $1 AND kind = 0 AND status IN (1, 3, 4, 5) WHERE_MORE LIMIT $2)
		AND kind = 0 AND status IN (1, 3, 4, 5)
	RETURNING id
),
dh AS (DELETE FROM reprise.history h USING d WHERE h.hub = $1 AND h.instance_id = d.id),
di AS (DELETE FROM reprise.inbox m USING d WHERE m.hub = $1 AND m.instance_id = d.id),
dt AS (DELETE FROM reprise.tasks t USING d WHERE t.hub = $1 AND t.instance_id = d.id)
SELECT id FROM d`

// PurgeInstance deletes a finished instance and everything it owns.
func (s *Store) PurgeInstance(ctx context.Context, id string) error {
	if s.isClosed() {
		return errClosed("purge instance")
	}
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	sql := strings.Replace(purgeSQL, "WHERE_MORE", "AND id = $3", 1)
	b := &pgx.Batch{}
	b.Queue(sql, s.hub, 1, id)
	// After the delete, in the same transaction: a row left means the instance is active (an
	// entity is not one PurgeInstance knows of).
	b.Queue(`SELECT (SELECT status FROM reprise.instances WHERE hub = $1 AND id = $2 AND kind = 0), `+changedSQL("$3", "SELECT $2::text"), s.hub, id, s.channel)
	br := s.pool.SendBatch(ctx, b)
	var deleted []string
	rows, err := br.Query()
	if err == nil {
		deleted, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var status *int16
	if err == nil {
		err = br.QueryRow().Scan(&status, new(int64))
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return s.dbErr(fmt.Sprintf("purge %q", id), err)
	case len(deleted) == 1:
		s.notifier.Changed(id)
		return nil
	case status == nil:
		return fmt.Errorf("postgres: purge %q: %w", id, store.ErrNotFound)
	default:
		return fmt.Errorf("postgres: purge %q: %w (%s); terminate it first", id, store.ErrInstanceActive, store.Status(*status))
	}
}

// rewindSQL sets a Failed instance Running and delivers the rewind command, in one statement;
// the status it reads back is the one before the update (all parts see one snapshot).
var rewindSQL = `
WITH up AS (
	UPDATE reprise.instances i SET status = 0, output = NULL, failure = NULL, updated_at = now()
	WHERE i.hub = $1 AND i.id = $2 AND i.status = 3
	RETURNING i.hub, i.id, i.name, i.kind, i.sticky_owner
),
ins AS (
	INSERT INTO reprise.inbox (hub, instance_id, execution_id, data, visible_at, instance_name)
	SELECT $1, up.id, $3, $4, now(), up.name FROM up
	RETURNING instance_id
)
SELECT (SELECT status FROM reprise.instances WHERE hub = $1 AND id = $2),
	(SELECT count(*) FROM ins),
	(SELECT count(pg_notify($5, p)) FROM (SELECT ` + wakeSQL + ` AS p FROM up i) n),
	` + changedSQL("$5", "SELECT id FROM up")

// RewindInstance sets a Failed instance Running and delivers the rewind command; see store.Store.
func (s *Store) RewindInstance(ctx context.Context, id string, m store.Message) error {
	if s.isClosed() {
		return errClosed("rewind instance")
	}
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("postgres: rewind: %w", err)
	}
	var status *int16
	var inserted int64
	err := s.pool.QueryRow(ctx, rewindSQL, s.hub, id, m.ExecutionID, nonNil(m.Data), s.channel).Scan(&status, &inserted, new(int64), new(int64))
	switch {
	case err != nil:
		return s.dbErr(fmt.Sprintf("rewind %q", id), err)
	case status == nil:
		return fmt.Errorf("postgres: rewind %q: %w", id, store.ErrNotFound)
	case inserted == 0:
		return fmt.Errorf("postgres: rewind %q: %w (%s)", id, store.ErrNotFailed, store.Status(*status))
	}
	s.notifier.Changed(id)
	s.notifier.Notify(store.OrchestrationWorkKind)
	return nil
}

// purgeChunk bounds the transactions of PurgeInstances, so that purging millions of instances
// neither holds locks for long nor builds one huge transaction.
const purgeChunk = 1000

// purgeManySQL is purgeSQL for PurgeInstances, its chunk chosen once (MATERIALIZED: a subquery
// in the DELETE's condition may be run again, and its LIMIT then bounds each run, not the
// chunk). The filters (WHERE_MORE) are checked again on the
// rows the DELETE locks, so an instance replaced or updated since the snapshot of the subquery is
// left alone. A limited purge (SKIP_LOCKED) leaves the rows that a commit, or the purge of another
// host, holds: batches on several hosts take disjoint rows and never wait for each other or for
// the hot path, and the rows skipped are there for the next batch. An unlimited purge (the
// management API's) waits for them instead, so that it leaves no finished instance behind.
// A single status with an updated-before bound and a limit (retention) walks instances_by_status
// from the oldest created and stops at the creation bound.
const purgeManySQL = `
WITH c AS MATERIALIZED (
	SELECT id FROM reprise.instances WHERE hub = $1 AND kind = 0 AND status IN (1, 3, 4, 5) WHERE_MORE
	ORDER_BY LIMIT $2 SKIP_LOCKED
),
d AS (
	DELETE FROM reprise.instances i USING c WHERE i.hub = $1 AND i.id = c.id
		AND kind = 0 AND status IN (1, 3, 4, 5) WHERE_MORE
	RETURNING i.id
),
dh AS (DELETE FROM reprise.history h USING d WHERE h.hub = $1 AND h.instance_id = d.id),
di AS (DELETE FROM reprise.inbox m USING d WHERE m.hub = $1 AND m.instance_id = d.id),
dt AS (DELETE FROM reprise.tasks t USING d WHERE t.hub = $1 AND t.instance_id = d.id)
SELECT id FROM d`

// PurgeInstances deletes the finished instances matching f, a chunk per transaction, at most
// f.Limit of them when it is set.
func (s *Store) PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error) {
	if s.isClosed() {
		return 0, errClosed("purge instances")
	}
	if err := f.Check(); err != nil {
		return 0, fmt.Errorf("postgres: purge instances: %w", err)
	}
	var statuses []int16
	for _, st := range f.Statuses {
		if st.Terminal() {
			statuses = append(statuses, int16(st))
		}
	}
	if len(f.Statuses) > 0 && len(statuses) == 0 {
		return 0, nil // only active statuses asked for: those are never purged
	}
	more := ""
	args := []any{s.hub, purgeChunk}
	switch len(statuses) {
	case 0:
	case 1: // an equality, so that instances_by_status serves it
		args = append(args, statuses[0])
		more += fmt.Sprintf(" AND status = $%d", len(args))
	default:
		args = append(args, statuses)
		more += fmt.Sprintf(" AND status = ANY($%d::smallint[])", len(args))
	}
	if !f.CreatedFrom.IsZero() {
		args = append(args, lowerBound(f.CreatedFrom))
		more += fmt.Sprintf(" AND created_at >= $%d", len(args))
	}
	if !f.CreatedTo.IsZero() {
		args = append(args, upperBound(f.CreatedTo))
		more += fmt.Sprintf(" AND created_at <= $%d", len(args))
	}
	if !f.UpdatedBefore.IsZero() {
		args = append(args, lowerBound(f.UpdatedBefore))
		more += fmt.Sprintf(" AND created_at < $%d AND updated_at < $%d", len(args), len(args))
	}
	sql := strings.ReplaceAll(purgeManySQL, "WHERE_MORE", more)
	skip, order := "", ""
	if f.Limit > 0 {
		// In index order: an index scan marks the entries of the rows earlier batches deleted
		// as dead, so that the next batch skips them cheaply, where a sequential scan would read
		// the whole deleted prefix again, batch after batch, until a vacuum.
		skip, order = "FOR UPDATE SKIP LOCKED", "ORDER BY created_at"
	}
	sql = strings.Replace(strings.Replace(sql, "SKIP_LOCKED", skip, 1), "ORDER_BY", order, 1)
	total := 0
	for {
		chunk := purgeChunk
		if f.Limit > 0 && f.Limit-total < chunk {
			chunk = f.Limit - total
		}
		args[1] = chunk
		b := &pgx.Batch{}
		b.Queue(sql, args...)
		b.Queue(`SELECT count(pg_notify($1, 'c*'))`, s.channel)
		br := s.pool.SendBatch(ctx, b)
		var ids []string
		rows, err := br.Query()
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return total, s.dbErr("purge instances", err)
		}
		for _, id := range ids {
			s.notifier.Changed(id)
		}
		total += len(ids)
		if len(ids) < chunk || (f.Limit > 0 && total >= f.Limit) {
			return total, nil
		}
	}
}
