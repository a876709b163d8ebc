package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// op is one write operation queued for the writer goroutine.
type op struct {
	ctx context.Context
	fn  func(w *writer, eff *effects) error
	// fenced ops check their precondition (the lease) before they write anything, so they need
	// no savepoint: a precondition failure (ErrLeaseLost) has written nothing, and any other
	// error undoes the whole transaction. Two statements fewer per commit on the hot path.
	fenced bool
	// leasesOnly ops change nothing but leases (claims, renewals, releases). A transaction of
	// such ops alone need not be synced to disk at commit (see runBatch).
	leasesOnly bool
	claim      bool // a claim of work: the observers count those that leased nothing (eff.took)
	err        error
	eff        effects
	done       chan error // buffered, so the writer never blocks on a caller that gave up
}

// refusal marks an error that a fenced op returned before its first write, other than
// ErrLeaseLost (which always is one): the op is refused, and the transaction goes on without it.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// refused reports whether a fenced op's error left the transaction untouched.
func refused(err error) bool {
	var r refusal
	return errors.Is(err, store.ErrLeaseLost) || errors.As(err, &r)
}

// effects are the wake-ups an operation causes, fired only once its transaction is durable.
type effects struct {
	orchestration bool
	activity      bool
	entity        bool
	changed       []string
	took          bool // a claim leased something
}

// work records a wake-up for the work of an instance of kind.
func (e *effects) work(kind store.Kind) {
	if kind == store.KindEntity {
		e.entity = true
	} else {
		e.orchestration = true
	}
}

// do queues fn for the writer and waits for its outcome. If ctx ends first, do returns ctx.Err()
// and the operation may or may not have been applied.
func (s *Store) do(ctx context.Context, fn func(w *writer, eff *effects) error) error {
	return s.enqueue(ctx, &op{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doFenced is do for an op that fails only through ErrLeaseLost before its first write (see op).
func (s *Store) doFenced(ctx context.Context, fn func(w *writer, eff *effects) error) error {
	return s.enqueue(ctx, &op{ctx: ctx, fn: fn, fenced: true, done: make(chan error, 1)})
}

// doLeases is do for an op that writes only leases; claim says it is also fenced (see op).
func (s *Store) doLeases(ctx context.Context, claim bool, fn func(w *writer, eff *effects) error) error {
	return s.enqueue(ctx, &op{ctx: ctx, fn: fn, fenced: claim, leasesOnly: true, claim: claim, done: make(chan error, 1)})
}

func (s *Store) enqueue(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("sqlite: %w", store.ErrClosed)
	}
	select {
	case s.ops <- o:
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
	defer close(s.done)
	batch := make([]*op, 0, s.maxBatch)
	for {
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case <-s.quit:
			// No sender can be inside do any more (closed is set under the lock), so this
			// drains everything that will ever be queued.
			for {
				select {
				case o := <-s.ops:
					o.done <- fmt.Errorf("sqlite: %w", store.ErrClosed)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < s.maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if !s.observers.Active() {
			s.runBatch(batch)
		} else {
			start := time.Now()
			tx := store.Transaction{Writes: len(batch)}
			tx.Synced = s.runBatch(batch)
			tx.Duration = time.Since(start)
			for _, o := range batch {
				if o.claim {
					tx.Claims++
					if !o.eff.took {
						tx.EmptyClaims++
					}
				}
			}
			s.observers.Tell(tx)
		}
		for i := range batch {
			batch[i] = nil // let finished ops be collected
		}
	}
}

// runBatch applies the ops in one transaction, each inside a savepoint, then fires the effects of
// the ops that succeeded and answers every caller. It reports whether the commit synced the
// write-ahead log to disk (false for a failed transaction).
func (s *Store) runBatch(batch []*op) (synced bool) {
	w := s.w
	w.now = s.now().UnixNano()
	failAll := func(err error) {
		for _, o := range batch {
			o.done <- fmt.Errorf("sqlite: write transaction: %w", err)
		}
	}
	if err := w.setSync(batch); err != nil {
		failAll(err)
		return false
	}
	if _, err := w.begin.ExecContext(w.ctx); err != nil {
		failAll(err)
		return false
	}
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err // the caller has gone; do not apply what it no longer waits for
			continue
		}
		if o.fenced {
			o.err = o.fn(w, &o.eff)
			if o.err != nil {
				o.eff = effects{}
				if !refused(o.err) {
					w.rollback()
					failAll(o.err)
					return false
				}
			}
			continue
		}
		if _, err := w.savepoint.ExecContext(w.ctx); err != nil {
			w.rollback()
			failAll(err)
			return false
		}
		o.err = o.fn(w, &o.eff)
		if o.err != nil {
			o.eff = effects{}
			if _, err := w.rollbackTo.ExecContext(w.ctx); err != nil {
				w.rollback()
				failAll(err)
				return false
			}
		}
		if _, err := w.release.ExecContext(w.ctx); err != nil {
			w.rollback()
			failAll(err)
			return false
		}
	}
	if _, err := w.commit.ExecContext(w.ctx); err != nil {
		w.rollback()
		failAll(err)
		return false
	}
	// Durable now: wake dispatchers and watchers, then answer.
	var orch, act, ent bool
	for _, o := range batch {
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
	for _, o := range batch {
		o.done <- o.err
	}
	return s.w.synced // setSync left it as this commit ran: true only when durable
}

// writer owns the write connection and its prepared statements; only the writer goroutine uses it.
type writer struct {
	ctx       context.Context
	conn      *sql.Conn
	hub       string
	now       int64 // unix nanoseconds at the start of the current transaction
	lastToken int64

	begin, commit, rollbackStmt, savepoint, rollbackTo, release *sql.Stmt

	// durable is DurabilityFull; synced is whether the connection's synchronous setting is FULL
	// now (see setSync).
	durable, synced bool

	// orchNames, entNames and taskNames rotate the name a claim starts from (see nameTurns),
	// one per kind: a shared turn, advanced by the dispatchers in alternation, could always land
	// on the same name for one kind. orchExcept, entExcept and taskExcept do the same for claims
	// of every name but some (store.AllNamesExcept), whose dispatchers may run beside the others.
	orchNames, entNames, taskNames    nameTurns
	orchExcept, entExcept, taskExcept uint
	// claimStatements counts the claim statements run, for a test: one per claim that found
	// work, however many names it lists.
	claimStatements int

	getStatus, insertInstance, deleteInstance, deleteHistory, deleteInbox, deleteTasks *sql.Stmt
	insertMessage, insertHistory, insertTask, insertLeasedTask, deleteMessage          *sql.Stmt
	commitInstance, commitMerged, leasedTask, hasVisible, insertEntity, deleteEntity   *sql.Stmt
	anyClaimable, claimInstances, claimedMessages, anyTask, claimTasks, completeTask   *sql.Stmt
	readyNames, readyTaskNames                                                         *sql.Stmt
	renewInstance, renewTask, releaseInstances, releaseTasks                           *sql.Stmt

	all []*sql.Stmt
}

const instanceColumns = `id, name, execution_id, parent_id, status, input, output, custom_status, failure, created_at, updated_at, history_len, version, tags, kind`

// readyNames and readyTaskNames are the conditions of a claim of every name but those of
// the JSON array ?3 (store.AllNamesExcept): they list the names, as stored (one casing of
// each), that have claimable work (of instances of kind ?4), and the claim then takes those
// names as a claim of them would. They step through the distinct names of inbox_by_kind_name
// (tasks_by_name), one
// seek each, skip the excluded ones, and look for ready work of the rest as
// anyClaimable (anyTask) does: so a claim reads a few index entries per name, whatever
// the backlog of the excluded names (names that another dispatcher of the same process
// serves), and finding no work costs as many seeks as the inbox (tasks) has names.
const (
	readyNamesSQL = `WITH RECURSIVE seen(name) AS (
		SELECT (SELECT instance_name FROM inbox INDEXED BY inbox_by_kind_name WHERE hub = ?1 AND kind = ?4 ORDER BY instance_name LIMIT 1)
		UNION ALL
		SELECT (SELECT m.instance_name FROM inbox m INDEXED BY inbox_by_kind_name
			WHERE m.hub = ?1 AND m.kind = ?4 AND m.instance_name > s.name ORDER BY m.instance_name LIMIT 1)
		FROM seen s WHERE s.name IS NOT NULL)
	SELECT s.name FROM seen s
	WHERE s.name IS NOT NULL AND s.name COLLATE NOCASE NOT IN (SELECT value FROM json_each(?3))
		AND EXISTS (SELECT 1 FROM inbox m INDEXED BY inbox_by_kind_name CROSS JOIN instances i
			WHERE m.hub = ?1 AND m.kind = ?4 AND m.instance_name = s.name AND m.visible_at <= ?2
				AND i.hub = m.hub AND i.id = m.instance_id AND i.lease_expires <= ?2)`
	readyTaskNamesSQL = `WITH RECURSIVE seen(name) AS (
		SELECT (SELECT name FROM tasks INDEXED BY tasks_by_name WHERE hub = ?1 ORDER BY name COLLATE NOCASE LIMIT 1)
		UNION ALL
		SELECT (SELECT t.name FROM tasks t INDEXED BY tasks_by_name
			WHERE t.hub = ?1 AND t.name COLLATE NOCASE > s.name ORDER BY t.name COLLATE NOCASE LIMIT 1)
		FROM seen s WHERE s.name IS NOT NULL)
	SELECT s.name FROM seen s
	WHERE s.name IS NOT NULL AND s.name COLLATE NOCASE NOT IN (SELECT value FROM json_each(?3))
		AND EXISTS (SELECT 1 FROM tasks t INDEXED BY tasks_by_name
			WHERE t.hub = ?1 AND t.name = s.name COLLATE NOCASE AND t.lease_expires <= ?2)`
)

func newWriter(ctx context.Context, conn *sql.Conn, hub string, durable bool) (*writer, error) {
	w := &writer{ctx: context.Background(), conn: conn, hub: hub, lastToken: time.Now().UnixNano(), durable: durable, synced: durable}
	// Lease tokens start from the clock, so they keep growing across restarts of the process.
	prep := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commit, `COMMIT`},
		{&w.rollbackStmt, `ROLLBACK`},
		{&w.savepoint, `SAVEPOINT op`},
		{&w.rollbackTo, `ROLLBACK TO op`},
		{&w.release, `RELEASE op`},

		{&w.getStatus, `SELECT status, kind FROM instances WHERE hub = ?1 AND id = ?2`},
		{&w.insertInstance, `INSERT INTO instances (hub, id, name, execution_id, parent_id, status, input, output, custom_status, failure, created_at, updated_at, version, tags)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)`},
		{&w.deleteInstance, `DELETE FROM instances WHERE hub = ?1 AND id = ?2`},
		{&w.deleteHistory, `DELETE FROM history WHERE hub = ?1 AND instance_id = ?2`},
		{&w.deleteInbox, `DELETE FROM inbox WHERE hub = ?1 AND instance_id = ?2`},
		{&w.deleteTasks, `DELETE FROM tasks WHERE hub = ?1 AND instance_id = ?2`},
		// Messages to instances that do not exist are dropped, as Durable Functions drops events
		// raised to unknown instances; rows affected tells the caller which happened.
		// The message carries its instance's name and kind, for claims by kind and name. It goes
		// only to an instance of kind ?6: insertMsg tries orchestrations first, the common case, so
		// that it knows which kind of work it made without reading the row again.
		{&w.insertMessage, `INSERT INTO inbox (hub, instance_id, execution_id, data, visible_at, instance_name, kind)
			SELECT ?1, ?2, ?3, ?4, ?5, name, kind FROM instances WHERE hub = ?1 AND id = ?2 AND kind = ?6`},
		// An entity comes into being with its first message: running, without state.
		{&w.insertEntity, `INSERT INTO instances (hub, id, kind, name, execution_id, parent_id, status, created_at, updated_at)
			VALUES (?1, ?2, 1, ?3, '', '', 0, ?4, ?4) ON CONFLICT (hub, id) DO NOTHING`},
		{&w.deleteEntity, `DELETE FROM instances WHERE hub = ?1 AND id = ?2 AND kind = 1 AND output IS NULL
				AND lease_expires <= ?3 AND updated_at = ?4
				AND NOT EXISTS (SELECT 1 FROM inbox INDEXED BY inbox_by_instance WHERE hub = ?1 AND instance_id = ?2)`},
		// idx is the instance's new history length, just set by commitInstance, minus ?3: an
		// episode's n chunks pass ?3 = n, n-1, ..., 1.
		{&w.insertHistory, `INSERT INTO history (hub, instance_id, idx, data)
			VALUES (?1, ?2, (SELECT history_len FROM instances WHERE hub = ?1 AND id = ?2) - ?3, ?4)`},
		{&w.insertTask, `INSERT INTO tasks (hub, instance_id, execution_id, name, data) VALUES (?1, ?2, ?3, ?4, ?5)`},
		{&w.insertLeasedTask, `INSERT INTO tasks (hub, instance_id, execution_id, name, data, lease_owner, lease_token, lease_expires)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`},
		{&w.deleteMessage, `DELETE FROM inbox WHERE id = ?1 AND hub = ?2 AND instance_id = ?3`},
		// The fencing check is the WHERE clause: the row must still carry this claim's token.
		// No RETURNING history_len: SQLite runs RETURNING as a trigger, which turns this one-row
		// update into a two-pass one with a statement journal and a temporary table, and
		// insertHistory reads the new length itself. Tags are not written: they stay as created.
		{&w.commitInstance, `UPDATE instances SET name = ?3, execution_id = ?4, parent_id = ?5, status = ?6,
				input = ?7, output = ?8, custom_status = ?9, failure = ?10, updated_at = ?11, version = ?16,
				history_len = (CASE WHEN ?12 THEN 0 ELSE history_len END) + ?13,
				lease_owner = NULL, lease_token = 0, lease_expires = 0
			WHERE hub = ?1 AND id = ?2 AND lease_token = ?14 AND lease_owner = ?15`},
		// A merged completion's commit (store.Completion): the same update, fenced instead on
		// the instance being an orchestration without a live lease (?14 is now), of execution
		// ?15 and history length ?17 as the committer saw it, with no visible message waiting.
		// (The WHERE clause reads the values before the update.)
		{&w.commitMerged, `UPDATE instances SET name = ?3, execution_id = ?4, parent_id = ?5, status = ?6,
				input = ?7, output = ?8, custom_status = ?9, failure = ?10, updated_at = ?11, version = ?16,
				history_len = (CASE WHEN ?12 THEN 0 ELSE history_len END) + ?13,
				lease_owner = NULL, lease_token = 0, lease_expires = 0
			WHERE hub = ?1 AND id = ?2 AND kind = 0 AND lease_expires <= ?14
				AND execution_id = ?15 AND history_len = ?17
				AND NOT EXISTS (SELECT 1 FROM inbox INDEXED BY inbox_by_instance
					WHERE hub = ?1 AND instance_id = ?2 AND visible_at <= ?14)`},
		// The instance of a task whose lease holds: completeTask's condition, read first.
		{&w.leasedTask, `SELECT instance_id FROM tasks WHERE id = ?1 AND hub = ?2 AND lease_token = ?3 AND lease_owner = ?4`},
		// The kind of a visible message of the instance (which is its instance's), or -1 for none.
		{&w.hasVisible, `SELECT coalesce((SELECT kind FROM inbox INDEXED BY inbox_by_instance
			WHERE hub = ?1 AND instance_id = ?2 AND visible_at <= ?3 LIMIT 1), -1)`},
		// anyClaimable and anyTask are the claims' conditions alone. Dispatchers often find no
		// work, and this read says so at a fraction of the cost of a claim that updates nothing
		// (which still opens its temporary tables and statement journal).
		//
		// ?3 is the claimer's names as a JSON array: one seek into inbox_by_kind_name
		// (tasks_by_name) per name and the kind ?4 of instances claimed, so work of other names
		// and of the other kind is never read. CROSS JOIN keeps the names outermost.
		{&w.anyClaimable, `SELECT EXISTS (SELECT 1 FROM json_each(?3) n CROSS JOIN inbox m INDEXED BY inbox_by_kind_name CROSS JOIN instances i
			WHERE m.hub = ?1 AND m.kind = ?4 AND m.instance_name = n.value AND m.visible_at <= ?2
				AND i.hub = m.hub AND i.id = m.instance_id AND i.lease_expires <= ?2)`},
		{&w.anyTask, `SELECT EXISTS (SELECT 1 FROM json_each(?3) n CROSS JOIN tasks t INDEXED BY tasks_by_name
			WHERE t.hub = ?1 AND t.name = n.value COLLATE NOCASE AND t.lease_expires <= ?2)`},
		{&w.readyNames, readyNamesSQL},
		{&w.readyTaskNames, readyTaskNamesSQL},
		// The claims walk their names (?7, rotated: see nameTurns) one after another, each name's
		// messages in visible order (its tasks in lease then ID order: the index's order, which
		// the nested loop keeps) and stop at the limit; instances under a live lease are
		// skipped, messages not yet visible are never read. One statement for all the names: a
		// statement per name cost a claim as many UPDATEs (each with its statement journal) as
		// the host has names, almost all of them finding nothing.
		//
		// The limit is written +?6, not ?6, in both claims: SQLite (3.54) plans a bare LIMIT
		// parameter with its bound value, so binding a different value re-prepares the
		// statement, and the engine claims up to its free slots, which change all the time. The
		// unary plus makes the limit an expression evaluated at run time; the plan is the same.
		{&w.claimInstances, `UPDATE instances SET lease_owner = ?2, lease_token = ?3, lease_expires = ?4
			WHERE hub = ?1 AND id IN (
				SELECT DISTINCT m.instance_id FROM json_each(?7) n CROSS JOIN inbox m INDEXED BY inbox_by_kind_name CROSS JOIN instances i
				WHERE m.hub = ?1 AND m.kind = ?8 AND m.instance_name = n.value AND m.visible_at <= ?5
					AND i.hub = m.hub AND i.id = m.instance_id AND i.lease_expires <= ?5
				LIMIT +?6)
			RETURNING ` + instanceColumns},
		// One query for the messages of all instances just claimed: they share the lease, so the
		// join is on the rows themselves. (Passing the IDs as JSON lost every ID that was not
		// UTF-8: the claim came without messages and the instance was claimed again for ever.)
		// The indexes are named: left to itself (no ANALYZE statistics), SQLite walks the whole
		// inbox of the hub and looks each message's instance up, on every claim.
		{&w.claimedMessages, `SELECT m.id, m.instance_id, m.execution_id, m.data, m.visible_at
			FROM instances i INDEXED BY instances_by_lease_owner CROSS JOIN inbox m INDEXED BY inbox_by_instance
			WHERE i.hub = ?1 AND i.lease_owner = ?2 AND i.lease_token = ?3
				AND m.hub = i.hub AND m.instance_id = i.id AND m.visible_at <= ?4
			ORDER BY m.id`},
		{&w.claimTasks, `UPDATE tasks SET lease_owner = ?2, lease_token = ?3, lease_expires = ?4
			WHERE id IN (SELECT t.id FROM json_each(?7) n CROSS JOIN tasks t INDEXED BY tasks_by_name
				WHERE t.hub = ?1 AND t.name = n.value COLLATE NOCASE AND t.lease_expires <= ?5
				LIMIT +?6)
			RETURNING id, instance_id, execution_id, name, data`},
		{&w.completeTask, `DELETE FROM tasks WHERE id = ?1 AND hub = ?2 AND lease_token = ?3 AND lease_owner = ?4 RETURNING instance_id`},
		// One claim at a time, fenced like a commit: only a lease that still holds (the row
		// carries its token) is renewed.
		{&w.renewInstance, `UPDATE instances SET lease_expires = ?5
			WHERE hub = ?1 AND id = ?2 AND lease_token = ?3 AND lease_owner = ?4`},
		{&w.renewTask, `UPDATE tasks SET lease_expires = ?5
			WHERE id = ?2 AND hub = ?1 AND lease_token = ?3 AND lease_owner = ?4`},
		{&w.releaseInstances, `UPDATE instances SET lease_owner = NULL, lease_token = 0, lease_expires = 0 WHERE hub = ?1 AND lease_owner = ?2`},
		{&w.releaseTasks, `UPDATE tasks SET lease_owner = NULL, lease_token = 0, lease_expires = 0 WHERE hub = ?1 AND lease_owner = ?2`},
	}
	for _, p := range prep {
		st, err := conn.PrepareContext(ctx, p.query)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", firstLine(p.query), err)
		}
		*p.dst = st
		w.all = append(w.all, st)
	}
	return w, nil
}

func (w *writer) close() error {
	for _, st := range w.all {
		st.Close()
	}
	w.all = nil
	return w.conn.Close()
}

func (w *writer) rollback() { _, _ = w.rollbackStmt.ExecContext(w.ctx) }

// setSync chooses, for a durable store, whether the batch's commit syncs the write-ahead log.
// A batch of lease writes alone (claims, renewals, releases) commits without a sync: the log is
// appended in order, so the next synced commit makes it durable too, and only a crash of the
// machine before then can undo it. Such a crash also ends every holder of those leases (the
// store is one file on one machine), so an undone lease is one nobody holds any more, and its
// work is claimed again as after any crash. Everything else a caller is told is done (instances,
// messages, episodes, completions) is synced before the caller hears of it.
func (w *writer) setSync(batch []*op) error {
	if !w.durable {
		return nil
	}
	want := false
	for _, o := range batch {
		if !o.leasesOnly {
			want = true
			break
		}
	}
	if want == w.synced {
		return nil
	}
	// Not a prepared statement: SQLite applies this pragma when it compiles the statement.
	pragma := `PRAGMA synchronous = NORMAL`
	if want {
		pragma = `PRAGMA synchronous = FULL`
	}
	if _, err := w.conn.ExecContext(w.ctx, pragma); err != nil {
		return err
	}
	w.synced = want
	return nil
}

// token returns a lease token no earlier claim of this store has used.
func (w *writer) token() int64 {
	w.lastToken++
	if now := time.Now().UnixNano(); now > w.lastToken {
		w.lastToken = now
	}
	return w.lastToken
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// ObserveTransactions adds a function told of each write transaction (store.TransactionObserver).
func (s *Store) ObserveTransactions(fn func(store.Transaction)) (remove func()) {
	return s.observers.Add(fn)
}

var _ store.TransactionObserver = (*Store)(nil)
