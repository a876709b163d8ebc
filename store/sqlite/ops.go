package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// CreateInstance creates an instance with its start message, applying the reuse policy.
func (s *Store) CreateInstance(ctx context.Context, inst store.Instance, start store.Message, policy store.ReusePolicy) error {
	if err := store.CheckCreate(inst, policy); err != nil {
		return fmt.Errorf("sqlite: create instance: %w", err)
	}
	return s.do(ctx, func(w *writer, eff *effects) error {
		status, kind, exists, err := w.status(inst.ID)
		if err != nil {
			return err
		}
		if exists {
			switch {
			case kind == store.KindEntity:
				return fmt.Errorf("sqlite: create instance %q: %w: an entity has that ID, and entities are never replaced; choose another ID", inst.ID, store.ErrInstanceExists)
			case policy == store.ReuseNever:
				return fmt.Errorf("sqlite: create instance %q: %w (status %s; the reuse policy forbids replacing it)", inst.ID, store.ErrInstanceExists, status)
			case policy == store.ReuseIfFinished && status.Active():
				return fmt.Errorf("sqlite: create instance %q: %w and is %s; wait for it to finish or terminate it first", inst.ID, store.ErrInstanceExists, status)
			}
			if err := w.deleteAll(inst.ID); err != nil {
				return err
			}
		}
		if err := w.createInstance(inst, start); err != nil {
			return err
		}
		eff.orchestration = true
		eff.changed = append(eff.changed, inst.ID)
		return nil
	})
}

// SendMessage adds a message to an existing instance's inbox.
func (s *Store) SendMessage(ctx context.Context, m store.Message) error {
	if err := store.CheckID(m.InstanceID); err != nil {
		return fmt.Errorf("sqlite: send message: %w", err)
	}
	return s.do(ctx, func(w *writer, eff *effects) error {
		kind, ok, err := w.insertMsg(m)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sqlite: send message to %q: %w", m.InstanceID, store.ErrNotFound)
		}
		eff.work(kind)
		return nil
	})
}

// SendEntityMessages delivers messages to entities in order, creating those that do not exist.
func (s *Store) SendEntityMessages(ctx context.Context, msgs []store.Message) error {
	for _, m := range msgs {
		if err := store.CheckEntityMessage(m); err != nil {
			return fmt.Errorf("sqlite: send entity messages: %w", err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.do(ctx, func(w *writer, eff *effects) error {
		return w.sendEntityMessages(msgs, eff)
	})
}

// sendEntityMessages creates the entities msgs go to that do not exist yet and delivers msgs to
// them in order. A message to an ID that an orchestration holds is dropped, as a message to an
// instance that does not exist is.
func (w *writer) sendEntityMessages(msgs []store.Message, eff *effects) error {
	for _, m := range msgs {
		// The entity mostly exists already (a hot one, signalled again and again): deliver first,
		// and create it only when that found no entity.
		ok, err := w.insertMsgOf(store.KindEntity, m)
		if err != nil {
			return err
		}
		if !ok {
			name, _, _ := store.ParseEntityInstanceID(m.InstanceID)
			if _, err := w.insertEntity.ExecContext(w.ctx, w.hub, m.InstanceID, name, w.now); err != nil {
				return err
			}
			if ok, err = w.insertMsgOf(store.KindEntity, m); err != nil {
				return err
			}
		}
		eff.entity = eff.entity || ok
	}
	return nil
}

// DeleteEntity removes an entity without state, lease or messages that was last updated at
// updatedAt.
func (s *Store) DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error) {
	if err := store.CheckID(id); err != nil {
		return false, fmt.Errorf("sqlite: delete entity: %w", err)
	}
	var removed bool
	err := s.do(ctx, func(w *writer, eff *effects) error {
		r, err := w.deleteEntity.ExecContext(w.ctx, w.hub, id, w.now, toNanos(updatedAt))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		if _, err := w.deleteHistory.ExecContext(w.ctx, w.hub, id); err != nil {
			return err
		}
		removed = true
		eff.changed = append(eff.changed, id)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: delete entity %q: %w", id, err)
	}
	return removed, nil
}

// RewindInstance sets a Failed instance Running and delivers the rewind command; see store.Store.
func (s *Store) RewindInstance(ctx context.Context, id string, m store.Message) error {
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("sqlite: rewind: %w", err)
	}
	m.InstanceID = id
	return s.do(ctx, func(w *writer, eff *effects) error {
		status, _, exists, err := w.status(id)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("sqlite: rewind %q: %w", id, store.ErrNotFound)
		}
		if status != store.StatusFailed {
			return fmt.Errorf("sqlite: rewind %q: %w (%s)", id, store.ErrNotFailed, status)
		}
		if _, err := w.conn.ExecContext(w.ctx, `UPDATE instances SET status = ?3, output = NULL, failure = NULL, updated_at = ?4
			WHERE hub = ?1 AND id = ?2`, w.hub, id, int(store.StatusRunning), w.now); err != nil {
			return err
		}
		if _, _, err := w.insertMsg(m); err != nil {
			return err
		}
		eff.orchestration = true
		eff.changed = append(eff.changed, id)
		return nil
	})
}

// PurgeInstance deletes a finished instance and everything it owns.
func (s *Store) PurgeInstance(ctx context.Context, id string) error {
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("sqlite: purge: %w", err)
	}
	return s.do(ctx, func(w *writer, eff *effects) error {
		status, kind, exists, err := w.status(id)
		if err != nil {
			return err
		}
		if !exists || kind != store.KindOrchestration {
			return fmt.Errorf("sqlite: purge %q: %w", id, store.ErrNotFound)
		}
		if status.Active() {
			return fmt.Errorf("sqlite: purge %q: %w (%s); terminate it first", id, store.ErrInstanceActive, status)
		}
		if err := w.deleteAll(id); err != nil {
			return err
		}
		eff.changed = append(eff.changed, id)
		return nil
	})
}

// PurgeInstances deletes the finished instances matching f, in one transaction: a limited purge
// (f.Limit) is a short one.
func (s *Store) PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error) {
	// In range, UnixNano cannot overflow: a bound out of range used to wrap and match everything.
	if err := f.Check(); err != nil {
		return 0, fmt.Errorf("sqlite: purge instances: %w", err)
	}
	var statuses []any
	for _, st := range f.Statuses {
		if st.Terminal() {
			statuses = append(statuses, int(st))
		}
	}
	if len(f.Statuses) > 0 && len(statuses) == 0 {
		return 0, nil // only active statuses asked for: those are never purged
	}
	if len(statuses) == 0 {
		for st := store.StatusRunning; st <= store.StatusSuspended; st++ {
			if st.Terminal() {
				statuses = append(statuses, int(st))
			}
		}
	}
	// The terms of the partial index instances_finished, literally, so that SQLite sees it applies.
	where := `hub = ? AND kind = 0 AND status IN (1, 3, 4, 5) AND status IN (?` + strings.Repeat(`, ?`, len(statuses)-1) + `)`
	args := append([]any{s.hub}, statuses...)
	if !f.UpdatedBefore.IsZero() {
		where += ` AND updated_at < ? AND created_at < ?`
		args = append(args, f.UpdatedBefore.UnixNano(), f.UpdatedBefore.UnixNano())
	}
	if !f.CreatedFrom.IsZero() {
		where += ` AND created_at >= ?`
		args = append(args, f.CreatedFrom.UnixNano())
	}
	if !f.CreatedTo.IsZero() {
		where += ` AND created_at <= ?`
		args = append(args, f.CreatedTo.UnixNano())
	}
	query := `SELECT id FROM instances WHERE ` + where
	if f.Limit > 0 {
		// By finish time, the order of instances_finished: a batch takes the oldest.
		query = `SELECT id FROM instances INDEXED BY instances_finished WHERE ` + where + ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var n int
	err := s.do(ctx, func(w *writer, eff *effects) error {
		rows, err := w.conn.QueryContext(w.ctx, query, args...)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// A statement per table for the whole set, not four per instance: a million instances
		// purge several times faster.
		list, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		for _, del := range []string{
			`DELETE FROM history WHERE hub = ?1 AND instance_id IN (SELECT value FROM json_each(?2))`,
			`DELETE FROM inbox WHERE hub = ?1 AND instance_id IN (SELECT value FROM json_each(?2))`,
			`DELETE FROM tasks WHERE hub = ?1 AND instance_id IN (SELECT value FROM json_each(?2))`,
			`DELETE FROM instances WHERE hub = ?1 AND id IN (SELECT value FROM json_each(?2))`,
		} {
			if _, err := w.conn.ExecContext(w.ctx, del, w.hub, string(list)); err != nil {
				return err
			}
		}
		n = len(ids)
		eff.changed = ids
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge instances: %w", err)
	}
	return n, nil
}

// ClaimOrchestrations leases up to max orchestration instances with visible messages.
func (s *Store) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	return s.claimInstances(ctx, store.OrchestrationWorkKind, owner, names, max, leaseFor)
}

// ClaimEntities leases up to max entities with visible messages.
func (s *Store) ClaimEntities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	return s.claimInstances(ctx, store.EntityWorkKind, owner, names, max, leaseFor)
}

// claimInstances leases up to max instances of the kind of work kind (orchestrations or
// entities) with visible messages: one statement for both kinds, the kind a parameter.
func (s *Store) claimInstances(ctx context.Context, kind store.WorkKind, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	if err := checkClaim(owner, names, max, leaseFor); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	instKind := instanceKind(kind)
	var work []store.OrchestrationWork
	err := s.doLeases(ctx, true, func(w *writer, eff *effects) error {
		work = work[:0]
		defer func() { eff.took = len(work) > 0 }()
		namesJSON, found, err := w.claimNames(kind, names)
		if err != nil || !found {
			return err
		}
		lease := store.Lease{Owner: owner, Token: w.token()}
		w.claimStatements++
		rows, err := w.claimInstances.QueryContext(w.ctx, w.hub, owner, lease.Token, w.now+int64(leaseFor), w.now, max, namesJSON, int(instKind))
		if err != nil {
			return err
		}
		for rows.Next() {
			inst, err := scanInstance(rows)
			if err != nil {
				rows.Close()
				return err
			}
			work = append(work, store.OrchestrationWork{Instance: inst, Lease: lease})
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(work) == 0 {
			return nil
		}
		index := make(map[string]int, len(work))
		for i := range work {
			index[work[i].Instance.ID] = i
		}
		rows, err = w.claimedMessages.QueryContext(w.ctx, w.hub, owner, lease.Token, w.now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.Message
			var visible int64
			if err := rows.Scan(&m.ID, &m.InstanceID, &m.ExecutionID, &m.Data, &visible); err != nil {
				return err
			}
			m.VisibleAt = fromNanos(visible)
			i := index[m.InstanceID]
			work[i].Messages = append(work[i].Messages, m)
		}
		return rows.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim %s work: %w", kind, err)
	}
	slices.SortFunc(work, func(a, b store.OrchestrationWork) int { return strings.Compare(a.Instance.ID, b.Instance.ID) })
	return work, nil
}

// CommitEpisode applies an episode atomically if its lease still holds, and releases the lease.
func (s *Store) CommitEpisode(ctx context.Context, e store.Episode) error {
	if err := store.CheckEpisode(e); err != nil {
		return fmt.Errorf("sqlite: commit episode: %w", err)
	}
	id := e.Instance.ID
	tl := e.LeaseTasks
	var leasedAt []int // leasedAt[i] is the place in tl.Leased of e.Tasks[i], or -1
	if tl != nil {
		leasedAt = make([]int, len(e.Tasks))
		for i := range leasedAt {
			leasedAt[i] = -1
		}
		for j, i := range tl.Tasks {
			leasedAt[i] = j
		}
	}
	var leased []store.ActivityWork // set by the writer; read only once it reported success
	err := s.doFenced(ctx, func(w *writer, eff *effects) error {
		leased = nil
		c := e.Completes
		owner := e.Lease.Owner
		if c != nil {
			owner = c.Lease.Owner
			// Read first: a fenced op writes nothing before its preconditions hold.
			var of string
			err := w.leasedTask.QueryRowContext(w.ctx, c.TaskID, w.hub, c.Lease.Token, c.Lease.Owner).Scan(&of)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlite: merged completion of activity task %d: %w (claimed again, or its instance was replaced or purged); drop the result", c.TaskID, store.ErrLeaseLost)
			}
			if err != nil {
				return err
			}
			if of != id {
				return refusal{fmt.Errorf("sqlite: merged completion of activity task %d: %w: the task is instance %q's, not %q's", c.TaskID, store.ErrInvalidArgument, of, id)}
			}
		} else if e.Lease.Token == 0 || e.Lease.Owner == "" {
			return fmt.Errorf("sqlite: commit episode of %q: %w (no lease given)", id, store.ErrLeaseLost)
		}
		in := e.Instance
		updated := toNanos(in.UpdatedAt)
		if updated == 0 {
			updated = w.now
		}
		stmt, fence := w.commitInstance, []any{e.Lease.Token, e.Lease.Owner, in.Version}
		if c != nil {
			stmt, fence = w.commitMerged, []any{w.now, c.ExecutionID, in.Version, c.HistoryLen}
		}
		r, err := stmt.ExecContext(w.ctx, append([]any{w.hub, id, in.Name, in.ExecutionID, in.ParentID, int(in.Status),
			in.Input, in.Output, in.CustomStatus, in.Failure, updated,
			boolInt(e.ResetHistory), len(e.History)}, fence...)...)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 && c != nil {
			return refusal{fmt.Errorf("sqlite: merged completion of %q: %w (leased, moved on from execution %q at history length %d, or messages are waiting); complete the task instead",
				id, store.ErrInstanceBusy, c.ExecutionID, c.HistoryLen)}
		} else if n == 0 {
			return fmt.Errorf("sqlite: commit episode of %q: %w (the instance was claimed again, replaced or purged); drop this episode", id, store.ErrLeaseLost)
		}
		if c != nil {
			// Checked above, in this transaction of the one writer: the task is still there.
			if _, err := w.completeTask.ExecContext(w.ctx, c.TaskID, w.hub, c.Lease.Token, c.Lease.Owner); err != nil {
				return err
			}
		}
		if e.ResetHistory {
			if _, err := w.deleteHistory.ExecContext(w.ctx, w.hub, id); err != nil {
				return err
			}
		}
		for i, chunk := range e.History {
			if chunk == nil {
				chunk = []byte{} // NOT NULL column; an empty chunk is still a chunk
			}
			// Counted back from the new history length (see insertHistory).
			if _, err := w.insertHistory.ExecContext(w.ctx, w.hub, id, len(e.History)-i, chunk); err != nil {
				return err
			}
		}
		for _, mid := range e.Consumed {
			if _, err := w.deleteMessage.ExecContext(w.ctx, mid, w.hub, id); err != nil {
				return err
			}
		}
		eff.changed = append(eff.changed, id)
		// Starts first, so that messages to the new instances in this episode find them.
		for _, st := range e.Starts {
			if err := w.start(st, eff); err != nil {
				return err
			}
		}
		for _, m := range e.Messages {
			if m.InstanceID == "" {
				m.InstanceID = id
			}
			kind, ok, err := w.insertMsg(m)
			if err != nil {
				return err
			}
			if ok {
				eff.work(kind)
			}
		}
		if err := w.sendEntityMessages(e.EntityMessages, eff); err != nil {
			return err
		}
		var taskLease store.Lease
		if tl != nil && len(tl.Tasks) > 0 {
			taskLease = store.Lease{Owner: owner, Token: w.token()}
			leased = make([]store.ActivityWork, len(tl.Tasks))
		}
		for i, t := range e.Tasks {
			if t.InstanceID == "" {
				t.InstanceID = id
			}
			if t.Data == nil {
				t.Data = []byte{}
			}
			if leasedAt == nil || leasedAt[i] < 0 {
				if _, err := w.insertTask.ExecContext(w.ctx, w.hub, t.InstanceID, t.ExecutionID, t.Name, t.Data); err != nil {
					return err
				}
				eff.activity = true
				continue
			}
			// Leased to the committer, which runs it: no wake-up, nobody else may take it.
			r, err := w.insertLeasedTask.ExecContext(w.ctx, w.hub, t.InstanceID, t.ExecutionID, t.Name, t.Data,
				taskLease.Owner, taskLease.Token, w.now+int64(tl.For))
			if err != nil {
				return err
			}
			if t.ID, err = r.LastInsertId(); err != nil {
				return err
			}
			leased[leasedAt[i]] = store.ActivityWork{Task: t, Lease: taskLease}
		}
		woken := eff.orchestration
		if in.Kind == store.KindEntity {
			woken = eff.entity
		}
		if !woken && c == nil {
			// Messages that arrived during the episode make the instance claimable again now
			// that the lease is gone; their own wake-up was absorbed while it was leased. The
			// messages carry the instance's kind, which says whose work it is. (The episode's
			// Instance.Kind, as claimed, only spares the read when that work is woken anyway.)
			var pending int
			if err := w.hasVisible.QueryRowContext(w.ctx, w.hub, id, w.now).Scan(&pending); err != nil {
				return err
			}
			if pending >= 0 {
				eff.work(store.Kind(pending))
			}
		}
		return nil
	})
	if err == nil && tl != nil {
		tl.Leased = leased
	}
	return err
}

// start creates a sub-orchestration, or delivers OnConflict when an active instance holds the ID.
func (w *writer) start(st store.Start, eff *effects) error {
	id := st.Instance.ID
	if id == "" {
		return errors.New("sqlite: commit episode: start of a sub-orchestration with an empty instance ID")
	}
	status, kind, exists, err := w.status(id)
	if err != nil {
		return err
	}
	// An entity's ID is never taken over, whatever its status says.
	if exists && (status.Active() || kind != store.KindOrchestration) {
		if st.OnConflict.InstanceID != "" {
			kind, ok, err := w.insertMsg(st.OnConflict)
			if err != nil {
				return err
			}
			if ok {
				eff.work(kind)
			}
		}
		return nil
	}
	if exists {
		if err := w.deleteAll(id); err != nil {
			return err
		}
	}
	if err := w.createInstance(st.Instance, st.Message); err != nil {
		return err
	}
	eff.orchestration = true
	eff.changed = append(eff.changed, id)
	return nil
}

// ClaimActivities leases up to max activity tasks without a live lease.
func (s *Store) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	if err := checkClaim(owner, names, max, leaseFor); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	var work []store.ActivityWork
	err := s.doLeases(ctx, true, func(w *writer, eff *effects) error {
		work = work[:0]
		defer func() { eff.took = len(work) > 0 }()
		namesJSON, found, err := w.claimNames(store.ActivityWorkKind, names)
		if err != nil || !found {
			return err
		}
		lease := store.Lease{Owner: owner, Token: w.token()}
		w.claimStatements++
		rows, err := w.claimTasks.QueryContext(w.ctx, w.hub, owner, lease.Token, w.now+int64(leaseFor), w.now, max, namesJSON)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t store.Task
			if err := rows.Scan(&t.ID, &t.InstanceID, &t.ExecutionID, &t.Name, &t.Data); err != nil {
				return err
			}
			work = append(work, store.ActivityWork{Task: t, Lease: lease})
		}
		return rows.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim activities: %w", err)
	}
	slices.SortFunc(work, func(a, b store.ActivityWork) int { return cmp.Compare(a.Task.ID, b.Task.ID) })
	return work, nil
}

// CompleteActivity deletes the task and delivers its result, if the lease still holds.
func (s *Store) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	return s.doFenced(ctx, func(w *writer, eff *effects) error {
		var instanceID string
		err := w.completeTask.QueryRowContext(w.ctx, taskID, w.hub, lease.Token, lease.Owner).Scan(&instanceID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: complete activity task %d: %w (claimed again, or its instance was replaced or purged); drop the result", taskID, store.ErrLeaseLost)
		}
		if err != nil {
			return err
		}
		if result.InstanceID == "" {
			result.InstanceID = instanceID
		}
		kind, ok, err := w.insertMsg(result)
		if err != nil {
			return err
		}
		if ok {
			eff.work(kind)
		}
		return nil
	})
}

// RenewLeases extends the leases of the claims that still hold.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []store.Claim, leaseFor time.Duration) error {
	if owner == "" {
		return errors.New("sqlite: renew leases: empty owner")
	}
	if leaseFor <= 0 {
		return fmt.Errorf("sqlite: renew leases: lease duration %v is not positive", leaseFor)
	}
	if len(claims) == 0 {
		return nil // nothing to renew; liveness means nothing to a store of one process
	}
	return s.doLeases(ctx, false, func(w *writer, eff *effects) error {
		until := w.now + int64(leaseFor)
		for _, c := range claims {
			if c.Lease.Owner != owner {
				return fmt.Errorf("sqlite: renew leases of %q: a claim of %q is among them", owner, c.Lease.Owner)
			}
			st, key, err := w.claimStmt(c, w.renewInstance, w.renewTask)
			if err != nil {
				return fmt.Errorf("sqlite: renew leases: %w", err)
			}
			if _, err := st.ExecContext(w.ctx, w.hub, key, c.Lease.Token, owner, until); err != nil {
				return fmt.Errorf("sqlite: renew leases: %w", err)
			}
		}
		return nil
	})
}

// claimStmt picks the statement for the claim's kind and the key it binds as ?2.
func (w *writer) claimStmt(c store.Claim, instance, task *sql.Stmt) (*sql.Stmt, any, error) {
	switch c.Kind {
	case store.OrchestrationWorkKind, store.EntityWorkKind:
		return instance, c.InstanceID, nil
	case store.ActivityWorkKind:
		return task, c.TaskID, nil
	}
	return nil, nil, fmt.Errorf("claim of unknown kind %d", int(c.Kind))
}

// ReleaseLeases drops every lease held by owner.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	if owner == "" {
		return errors.New("sqlite: release leases: empty owner")
	}
	return s.doLeases(ctx, false, func(w *writer, eff *effects) error {
		r, err := w.releaseInstances.ExecContext(w.ctx, w.hub, owner)
		if err != nil {
			return fmt.Errorf("sqlite: release leases: %w", err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			eff.orchestration, eff.entity = true, true
		}
		r, err = w.releaseTasks.ExecContext(w.ctx, w.hub, owner)
		if err != nil {
			return fmt.Errorf("sqlite: release leases: %w", err)
		}
		if n, _ := r.RowsAffected(); n > 0 {
			eff.activity = true
		}
		return nil
	})
}

// claimNames returns the names a claim takes, as the JSON array of its statement, and whether
// the claim's condition found any work to take with them (a claim that would update nothing is
// not run). A list of names is rotated by its nameTurns and tested with anyClaimable (anyTask).
// For every name but some (store.AllNamesExcept), the names are those that readyNames
// (readyTaskNames) finds with work, rotated in turn: a claim of them takes what a claim of every
// name but the excluded ones would.
func (w *writer) claimNames(kind store.WorkKind, names store.Names) (string, bool, error) {
	// The instance claims bind the kind of instance as ?4; the task claims have none.
	turns, exceptTurn, anyWork, ready := &w.orchNames, &w.orchExcept, w.anyClaimable, w.readyNames
	args := []any{w.hub, w.now, nil, int(store.KindOrchestration)}
	switch kind {
	case store.EntityWorkKind:
		turns, exceptTurn = &w.entNames, &w.entExcept
		args[3] = int(store.KindEntity)
	case store.ActivityWorkKind:
		turns, exceptTurn, anyWork, ready = &w.taskNames, &w.taskExcept, w.anyTask, w.readyTaskNames
		args = args[:3]
	}
	excluded, except := names.Except()
	if !except {
		namesJSON, err := turns.next(names)
		if err != nil {
			return "", false, err
		}
		args[2] = namesJSON
		var found bool
		if err := anyWork.QueryRowContext(w.ctx, args...).Scan(&found); err != nil || !found {
			return "", false, err
		}
		return namesJSON, true, nil
	}
	excludedJSON, err := namesArg(excluded)
	if err != nil {
		return "", false, err
	}
	args[2] = excludedJSON
	rows, err := ready.QueryContext(w.ctx, args...)
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var found store.Names
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return "", false, err
		}
		// A name no claim can carry (stored behind the store's back) must not fail the claims
		// of every other name; no claimer can match it anyway.
		if (store.Names{name}).Check() == nil {
			found = append(found, name)
		}
	}
	if err := rows.Close(); err != nil || len(found) == 0 {
		return "", false, err
	}
	*exceptTurn++
	first := int(*exceptTurn % uint(len(found)))
	namesJSON, err := namesArg(slices.Concat(found[first:], found[:first]))
	return namesJSON, err == nil, err
}

// nameTurns hands a claim its names as a JSON array for json_each, starting from the next name
// in turn: the claim walks the names in that order, oldest work first within each, so no name
// with a backlog starves the others. The engine passes the same names on every claim, so the
// rotations are encoded once; other names replace them.
type nameTurns struct {
	turn      uint
	names     store.Names
	rotations []string // rotations[i] starts at names[i]
}

func (t *nameTurns) next(names store.Names) (string, error) {
	t.turn++
	first := int(t.turn % uint(len(names)))
	if len(names) > maxCachedTurns {
		return namesArg(append(slices.Clone(names[first:]), names[:first]...))
	}
	if !slices.Equal(t.names, names) {
		rotations := make([]string, len(names))
		for i := range names {
			s, err := namesArg(append(slices.Clone(names[i:]), names[:i]...))
			if err != nil {
				return "", err
			}
			rotations[i] = s
		}
		t.names, t.rotations = slices.Clone(names), rotations
	}
	return t.rotations[first], nil
}

// maxCachedTurns bounds the names whose rotations are kept: they take space quadratic in the
// number of names, and a claim of that many names walks them all anyway.
const maxCachedTurns = 64

// namesArg encodes names for json_each. It is a string: SQLite reads a BLOB as JSONB. Names
// that JSON cannot carry as they are (invalid UTF-8 becomes U+FFFD) are refused.
func namesArg(names store.Names) (string, error) {
	if names == nil {
		return "[]", nil
	}
	if err := names.Check(); err != nil {
		return "", err
	}
	b, err := json.Marshal(names)
	return string(b), err
}

func checkClaim(owner string, names store.Names, max int, leaseFor time.Duration) error {
	switch {
	case owner == "":
		return errors.New("sqlite: claim: empty owner")
	case max <= 0:
		return fmt.Errorf("sqlite: claim: max is %d, want at least 1", max)
	case leaseFor <= 0:
		return fmt.Errorf("sqlite: claim: lease duration %v is not positive", leaseFor)
	}
	if err := names.Check(); err != nil {
		return fmt.Errorf("sqlite: claim: %w", err)
	}
	return nil
}

// status returns the status and kind of the instance id, and whether it exists.
func (w *writer) status(id string) (store.Status, store.Kind, bool, error) {
	var st, kind int
	err := w.getStatus.QueryRowContext(w.ctx, w.hub, id).Scan(&st, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	return store.Status(st), store.Kind(kind), true, nil
}

// instanceKind is the kind of instance whose work kind is: entities for EntityWorkKind, else
// orchestrations.
func instanceKind(kind store.WorkKind) store.Kind {
	if kind == store.EntityWorkKind {
		return store.KindEntity
	}
	return store.KindOrchestration
}

// deleteAll removes an instance with its history, inbox and tasks. Deleting the row also breaks
// every lease on it, which is what fences off a node still working on a replaced instance.
func (w *writer) deleteAll(id string) error {
	for _, st := range []*sql.Stmt{w.deleteHistory, w.deleteInbox, w.deleteTasks, w.deleteInstance} {
		if _, err := st.ExecContext(w.ctx, w.hub, id); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) createInstance(inst store.Instance, start store.Message) error {
	created := toNanos(inst.CreatedAt)
	if created == 0 {
		created = w.now
	}
	updated := toNanos(inst.UpdatedAt)
	if updated == 0 {
		updated = created
	}
	if _, err := w.insertInstance.ExecContext(w.ctx, w.hub, inst.ID, inst.Name, inst.ExecutionID, inst.ParentID,
		int(inst.Status), inst.Input, inst.Output, inst.CustomStatus, inst.Failure, created, updated,
		inst.Version, tagsJSON(inst.Tags)); err != nil {
		return err
	}
	start.InstanceID = inst.ID
	_, err := w.insertMsgOf(store.KindOrchestration, start)
	return err
}

// tagsJSON encodes tags for the tags column: a JSON object, or NULL for none. (Marshalling a
// map of strings cannot fail.)
func tagsJSON(tags map[string]string) any {
	if len(tags) == 0 {
		return nil
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

// parseTags decodes the tags column.
func parseTags(col sql.NullString) (map[string]string, error) {
	if !col.Valid || col.String == "" {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(col.String), &tags); err != nil {
		return nil, fmt.Errorf("sqlite: decode tags: %w", err)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	return tags, nil
}

// insertMsg adds m to its instance's inbox and returns the instance's kind, or false when that
// instance does not exist. It tries an orchestration first, the common case, so that a message
// to an orchestration costs one statement.
func (w *writer) insertMsg(m store.Message) (store.Kind, bool, error) {
	for _, kind := range [...]store.Kind{store.KindOrchestration, store.KindEntity} {
		ok, err := w.insertMsgOf(kind, m)
		if err != nil || ok {
			return kind, ok, err
		}
	}
	return 0, false, nil
}

// insertMsgOf adds m to its instance's inbox if that instance is of kind, and reports whether it
// did.
func (w *writer) insertMsgOf(kind store.Kind, m store.Message) (bool, error) {
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	r, err := w.insertMessage.ExecContext(w.ctx, w.hub, m.InstanceID, m.ExecutionID, data, toNanos(m.VisibleAt), int(kind))
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n > 0, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }

func scanInstance(r scanner) (store.Instance, error) {
	var in store.Instance
	var status, kind int
	var created, updated int64
	var tags sql.NullString
	err := r.Scan(&in.ID, &in.Name, &in.ExecutionID, &in.ParentID, &status,
		&in.Input, &in.Output, &in.CustomStatus, &in.Failure, &created, &updated, &in.HistoryLen,
		&in.Version, &tags, &kind)
	if err != nil {
		return in, err
	}
	in.Status = store.Status(status)
	in.Kind = store.Kind(kind)
	in.CreatedAt = fromNanos(created)
	in.UpdatedAt = fromNanos(updated)
	in.Tags, err = parseTags(tags)
	return in, err
}
