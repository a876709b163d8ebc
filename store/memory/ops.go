package memory

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
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
		return fmt.Errorf("memory: create instance: %w", err)
	}
	return s.write(ctx, "create instance", func(now time.Time, eff *effects) error {
		if old := s.instances[inst.ID]; old != nil {
			status := old.inst.Status
			switch {
			case old.inst.Kind == store.KindEntity:
				return fmt.Errorf("memory: create instance %q: %w: an entity has that ID, and entities are never replaced; choose another ID", inst.ID, store.ErrInstanceExists)
			case policy == store.ReuseNever:
				return fmt.Errorf("memory: create instance %q: %w (status %s; the reuse policy forbids replacing it)", inst.ID, store.ErrInstanceExists, status)
			case policy == store.ReuseIfFinished && status.Active():
				return fmt.Errorf("memory: create instance %q: %w and is %s; wait for it to finish or terminate it first", inst.ID, store.ErrInstanceExists, status)
			}
			s.deleteAll(inst.ID)
		}
		s.createInstance(inst, start, now)
		eff.orchestration = true
		eff.changed = append(eff.changed, inst.ID)
		return nil
	})
}

// createInstance adds an orchestration instance with its start message.
func (s *Store) createInstance(inst store.Instance, start store.Message, now time.Time) {
	inst = copyInstance(inst)
	inst.Kind = store.KindOrchestration
	inst.HistoryLen = 0
	inst.CreatedAt = stored(inst.CreatedAt)
	if inst.CreatedAt.IsZero() {
		inst.CreatedAt = now
	}
	inst.UpdatedAt = stored(inst.UpdatedAt)
	if inst.UpdatedAt.IsZero() {
		inst.UpdatedAt = inst.CreatedAt
	}
	s.instances[inst.ID] = &instance{inst: inst}
	start.InstanceID = inst.ID
	s.deliver(start, now)
}

// deleteAll removes an instance with its history, inbox and tasks. The instance's lease goes
// with it, which fences off a node still working on a replaced instance.
func (s *Store) deleteAll(id string) {
	if in := s.instances[id]; in != nil {
		s.deleteInstance(in)
	}
	for _, t := range s.tasksOf[id] {
		s.deleteTask(t)
	}
}

func (s *Store) deleteInstance(in *instance) {
	for _, m := range in.inbox {
		m.gone = true
	}
	in.inbox, in.history = nil, nil
	in.deleted = true
	if in.queue != nil {
		heap.Remove(in.queue, in.index)
	}
	delete(s.instances, in.inst.ID)
}

func (s *Store) deleteTask(t *task) {
	t.deleted = true
	if t.queue != nil {
		heap.Remove(t.queue, t.index)
	}
	delete(s.tasks, t.t.ID)
	if set := s.tasksOf[t.t.InstanceID]; set != nil {
		delete(set, t.t.ID)
		if len(set) == 0 {
			delete(s.tasksOf, t.t.InstanceID)
		}
	}
}

// deliver adds m to its instance's inbox and returns the instance's kind, or false when no
// instance has the ID: such messages are dropped, as SQLite drops them.
func (s *Store) deliver(m store.Message, now time.Time) (store.Kind, bool) {
	in := s.instances[m.InstanceID]
	if in == nil {
		return 0, false
	}
	s.lastMessage++
	m.ID = s.lastMessage
	m.Data = bytes.Clone(m.Data)
	if m.Data == nil {
		m.Data = []byte{} // as SQLite's NOT NULL column reads back
	}
	m.VisibleAt = stored(m.VisibleAt)
	msg := &message{m: m}
	in.inbox = append(in.inbox, msg)
	if !m.VisibleAt.IsZero() {
		heap.Push(&s.timers, msg)
	}
	if in.queue == nil {
		s.refresh(in, now)
	} else if m.VisibleAt.Before(in.readyAt) {
		// Queued already: only an earlier message moves it (the new one has the highest ID), and
		// an inbox of thousands of signals is not walked once per signal.
		in.readyAt, in.readyID = m.VisibleAt, m.ID
		heap.Fix(in.queue, in.index)
	}
	return in.inst.Kind, true
}

// SendMessage adds a message to an existing instance's inbox.
func (s *Store) SendMessage(ctx context.Context, m store.Message) error {
	if err := store.CheckID(m.InstanceID); err != nil {
		return fmt.Errorf("memory: send message: %w", err)
	}
	return s.write(ctx, "send message", func(now time.Time, eff *effects) error {
		kind, ok := s.deliver(m, now)
		if !ok {
			return fmt.Errorf("memory: send message to %q: %w", m.InstanceID, store.ErrNotFound)
		}
		eff.work(kind)
		return nil
	})
}

// SendEntityMessages delivers messages to entities in order, creating those that do not exist.
func (s *Store) SendEntityMessages(ctx context.Context, msgs []store.Message) error {
	for _, m := range msgs {
		if err := store.CheckEntityMessage(m); err != nil {
			return fmt.Errorf("memory: send entity messages: %w", err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.write(ctx, "send entity messages", func(now time.Time, eff *effects) error {
		s.sendEntityMessages(msgs, now, eff)
		return nil
	})
}

// sendEntityMessages creates the entities msgs go to that do not exist yet and delivers msgs to
// them in order. A message to an ID that an orchestration holds is dropped, as a message to an
// instance that does not exist is.
func (s *Store) sendEntityMessages(msgs []store.Message, now time.Time, eff *effects) {
	for _, m := range msgs {
		in := s.instances[m.InstanceID]
		if in == nil {
			name, _, _ := store.ParseEntityInstanceID(m.InstanceID)
			in = &instance{inst: store.Instance{
				ID: m.InstanceID, Kind: store.KindEntity, Name: name, Status: store.StatusRunning,
				CreatedAt: now, UpdatedAt: now,
			}}
			s.instances[m.InstanceID] = in
		}
		if in.inst.Kind != store.KindEntity {
			continue
		}
		s.deliver(m, now)
		eff.entity = true
	}
}

// DeleteEntity removes an entity without state, lease or messages that was last updated at
// updatedAt.
func (s *Store) DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error) {
	if err := store.CheckID(id); err != nil {
		return false, fmt.Errorf("memory: delete entity: %w", err)
	}
	var removed bool
	err := s.write(ctx, "delete entity", func(now time.Time, eff *effects) error {
		in := s.instances[id]
		if in == nil || in.inst.Kind != store.KindEntity || in.inst.Output != nil || in.lease.live(now) ||
			!in.inst.UpdatedAt.Equal(updatedAt) || len(in.inbox) > 0 {
			return nil
		}
		s.deleteInstance(in)
		removed = true
		eff.changed = append(eff.changed, id)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("memory: delete entity %q: %w", id, err)
	}
	return removed, nil
}

// RewindInstance sets a Failed instance Running and delivers the rewind command; see store.Store.
func (s *Store) RewindInstance(ctx context.Context, id string, m store.Message) error {
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("memory: rewind: %w", err)
	}
	m.InstanceID = id
	return s.write(ctx, "rewind", func(now time.Time, eff *effects) error {
		in := s.instances[id]
		if in == nil {
			return fmt.Errorf("memory: rewind %q: %w", id, store.ErrNotFound)
		}
		if in.inst.Status != store.StatusFailed {
			return fmt.Errorf("memory: rewind %q: %w (%s)", id, store.ErrNotFailed, in.inst.Status)
		}
		in.inst.Status = store.StatusRunning
		in.inst.Output, in.inst.Failure = nil, nil
		in.inst.UpdatedAt = now
		s.deliver(m, now)
		eff.orchestration = true
		eff.changed = append(eff.changed, id)
		return nil
	})
}

// PurgeInstance deletes a finished instance and everything it owns.
func (s *Store) PurgeInstance(ctx context.Context, id string) error {
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("memory: purge: %w", err)
	}
	return s.write(ctx, "purge", func(now time.Time, eff *effects) error {
		in := s.instances[id]
		if in == nil || in.inst.Kind != store.KindOrchestration {
			return fmt.Errorf("memory: purge %q: %w", id, store.ErrNotFound)
		}
		if in.inst.Status.Active() {
			return fmt.Errorf("memory: purge %q: %w (%s); terminate it first", id, store.ErrInstanceActive, in.inst.Status)
		}
		s.deleteAll(id)
		eff.changed = append(eff.changed, id)
		return nil
	})
}

// PurgeInstances deletes the finished instances matching f. A limited purge takes those that
// finished first.
func (s *Store) PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error) {
	if err := f.Check(); err != nil {
		return 0, fmt.Errorf("memory: purge instances: %w", err)
	}
	statuses := map[store.Status]bool{}
	for _, st := range f.Statuses {
		if st.Terminal() {
			statuses[st] = true
		}
	}
	if len(f.Statuses) > 0 && len(statuses) == 0 {
		// Only active statuses asked for: those are never purged. (Still ErrClosed when closed.)
		return 0, s.read(ctx, "purge instances", func(time.Time) error { return nil })
	}
	var n int
	err := s.write(ctx, "purge instances", func(now time.Time, eff *effects) error {
		var match []*instance
		for _, in := range s.instances {
			x := &in.inst
			switch {
			case x.Kind != store.KindOrchestration || !x.Status.Terminal(),
				len(statuses) > 0 && !statuses[x.Status],
				!f.UpdatedBefore.IsZero() && (!x.UpdatedAt.Before(f.UpdatedBefore) || !x.CreatedAt.Before(f.UpdatedBefore)),
				!f.CreatedFrom.IsZero() && x.CreatedAt.Before(f.CreatedFrom),
				!f.CreatedTo.IsZero() && x.CreatedAt.After(f.CreatedTo):
				continue
			}
			match = append(match, in)
		}
		if f.Limit > 0 && len(match) > f.Limit {
			slices.SortFunc(match, func(a, b *instance) int {
				return cmp.Or(a.inst.UpdatedAt.Compare(b.inst.UpdatedAt), strings.Compare(a.inst.ID, b.inst.ID))
			})
			match = match[:f.Limit]
		}
		for _, in := range match {
			s.deleteAll(in.inst.ID)
			eff.changed = append(eff.changed, in.inst.ID)
		}
		n = len(match)
		return nil
	})
	if err != nil {
		return 0, err
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

func (s *Store) claimInstances(ctx context.Context, kind store.WorkKind, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	if err := checkClaim(owner, names, max, leaseFor); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, nil
	}
	instKind := store.KindOrchestration
	if kind == store.EntityWorkKind {
		instKind = store.KindEntity
	}
	var work []store.OrchestrationWork
	err := s.write(ctx, "claim "+kind.String()+" work", func(now time.Time, eff *effects) error {
		s.expire(now)
		eff.claim = true
		defer func() { eff.took = len(work) > 0 }()
		order := s.claimOrder(kind, names, func(name string) bool {
			q := s.ready[readyKey{instKind, name}]
			return q != nil && q.next(now) != nil
		})
		if len(order) == 0 {
			return nil
		}
		s.lastToken++
		l := lease{owner: owner, token: s.lastToken, expires: now.Add(leaseFor)}
		for _, name := range order {
			q := s.ready[readyKey{instKind, name}]
			for q != nil && len(work) < max {
				in := q.next(now)
				if in == nil {
					break
				}
				s.leaseInstance(in, l, now)
				w := store.OrchestrationWork{Instance: in.get(true), Lease: store.Lease{Owner: owner, Token: l.token}}
				for _, m := range in.inbox {
					if !m.m.VisibleAt.After(now) {
						m := m.m
						m.Data = bytes.Clone(m.Data)
						w.Messages = append(w.Messages, m)
					}
				}
				work = append(work, w)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(work, func(a, b store.OrchestrationWork) int { return strings.Compare(a.Instance.ID, b.Instance.ID) })
	return work, nil
}

// claimOrder returns the folded names a claim of kind walks, in order: the claimer's names
// starting from the next in turn, or for a set of every name but some, the names with work
// (hasWork) that are not excluded, also starting from the next in turn. Turns keep one name's
// backlog from starving the others.
func (s *Store) claimOrder(kind store.WorkKind, names store.Names, hasWork func(name string) bool) []string {
	if excluded, ok := names.Except(); ok {
		skip := make(map[string]bool, len(excluded))
		for _, n := range excluded {
			skip[fold(n)] = true
		}
		var found []string
		if kind == store.ActivityWorkKind {
			for name := range s.readyTask {
				if !skip[name] && hasWork(name) {
					found = append(found, name)
				}
			}
		} else {
			instKind := store.KindOrchestration
			if kind == store.EntityWorkKind {
				instKind = store.KindEntity
			}
			for key := range s.ready {
				if key.kind == instKind && !skip[key.name] && hasWork(key.name) {
					found = append(found, key.name)
				}
			}
		}
		if len(found) == 0 {
			return nil
		}
		slices.Sort(found)
		s.exceptTurns[kind]++
		first := int(s.exceptTurns[kind] % uint(len(found)))
		return slices.Concat(found[first:], found[:first])
	}
	s.turns[kind]++
	first := int(s.turns[kind] % uint(len(names)))
	order := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range slices.Concat(names[first:], names[:first]) {
		if n = fold(n); !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	return order
}

// CommitEpisode applies an episode atomically if its lease still holds, and releases the lease.
// A merged completion (e.Completes) is applied as if its task's owner had claimed the instance,
// once the task's lease holds and the instance is free; see store.Completion.
func (s *Store) CommitEpisode(ctx context.Context, e store.Episode) error {
	if err := store.CheckEpisode(e); err != nil {
		return fmt.Errorf("memory: commit episode: %w", err)
	}
	id := e.Instance.ID
	tl := e.LeaseTasks
	var leasedAt map[int]int // index in e.Tasks -> place in tl.Leased
	if tl != nil {
		leasedAt = make(map[int]int, len(tl.Tasks))
		for j, i := range tl.Tasks {
			leasedAt[i] = j
		}
	}
	var leased []store.ActivityWork
	err := s.write(ctx, "commit episode", func(now time.Time, eff *effects) error {
		leased = nil
		in, owner, err := s.holder(e, now)
		if err != nil {
			return err
		}
		n := e.Instance
		x := &in.inst
		x.Name, x.ExecutionID, x.ParentID, x.Status, x.Version = n.Name, n.ExecutionID, n.ParentID, n.Status, n.Version
		x.Input, x.Output = bytes.Clone(n.Input), bytes.Clone(n.Output)
		x.CustomStatus, x.Failure = bytes.Clone(n.CustomStatus), bytes.Clone(n.Failure)
		x.UpdatedAt = stored(n.UpdatedAt)
		if x.UpdatedAt.IsZero() {
			x.UpdatedAt = now
		}
		in.lease = lease{}
		if e.ResetHistory {
			in.history = nil
		}
		for _, chunk := range e.History {
			c := bytes.Clone(chunk)
			if c == nil {
				c = []byte{} // an empty chunk is still a chunk
			}
			in.history = append(in.history, c)
		}
		if len(e.Consumed) > 0 {
			consumed := make(map[int64]bool, len(e.Consumed))
			for _, mid := range e.Consumed {
				consumed[mid] = true
			}
			in.inbox = slices.DeleteFunc(in.inbox, func(m *message) bool {
				if consumed[m.m.ID] {
					m.gone = true
					return true
				}
				return false
			})
		}
		eff.changed = append(eff.changed, id)
		// Starts first, so that messages to the new instances in this episode find them.
		for _, st := range e.Starts {
			s.start(st, now, eff)
		}
		for _, m := range e.Messages {
			if m.InstanceID == "" {
				m.InstanceID = id
			}
			if kind, ok := s.deliver(m, now); ok {
				eff.work(kind)
			}
		}
		s.sendEntityMessages(e.EntityMessages, now, eff)
		var l lease
		if len(leasedAt) > 0 {
			s.lastToken++
			l = lease{owner: owner, token: s.lastToken, expires: now.Add(tl.For)}
			leased = make([]store.ActivityWork, len(leasedAt))
		}
		for i, t := range e.Tasks {
			if t.InstanceID == "" {
				t.InstanceID = id
			}
			x := s.addTask(t, now)
			j, ok := leasedAt[i]
			if !ok {
				eff.activity = true
				continue
			}
			// Leased to the committer, which runs it: no wake-up, nobody else may take it.
			s.leaseTask(x, l, now)
			out := x.t
			out.Data = bytes.Clone(out.Data)
			leased[j] = store.ActivityWork{Task: out, Lease: store.Lease{Owner: l.owner, Token: l.token}}
		}
		s.refresh(in, now)
		// Messages that arrived during the episode make the instance claimable again now that
		// the lease is gone; their own wake-up was absorbed while it was leased.
		if !in.deleted && in.queue != nil && !in.readyAt.After(now) {
			eff.work(in.inst.Kind)
		}
		return nil
	})
	if err == nil && tl != nil {
		tl.Leased = leased
	}
	return err
}

// holder returns the instance episode e applies to, and the owner of the tasks it inserts
// leased, once everything that may refuse e has been checked: the claim's lease, or for a
// merged completion (e.Completes) the task's lease and an instance as a claim would have found
// it. A merged completion's task is then deleted, the one change holder makes; after it, the
// commit cannot fail. A refused episode changes nothing.
func (s *Store) holder(e store.Episode, now time.Time) (*instance, string, error) {
	id := e.Instance.ID
	c := e.Completes
	if c == nil {
		if e.Lease.Token == 0 || e.Lease.Owner == "" {
			return nil, "", fmt.Errorf("memory: commit episode of %q: %w (no lease given)", id, store.ErrLeaseLost)
		}
		in := s.instances[id]
		if in == nil || in.lease.token != e.Lease.Token || in.lease.owner != e.Lease.Owner {
			return nil, "", fmt.Errorf("memory: commit episode of %q: %w (the instance was claimed again, replaced or purged); drop this episode", id, store.ErrLeaseLost)
		}
		return in, e.Lease.Owner, nil
	}
	t := s.tasks[c.TaskID]
	if t == nil || t.lease.token != c.Lease.Token || t.lease.owner != c.Lease.Owner {
		return nil, "", fmt.Errorf("memory: merged completion of task %d for %q: %w (claimed again, or its instance was replaced or purged); drop the result", c.TaskID, id, store.ErrLeaseLost)
	}
	if t.t.InstanceID != id {
		return nil, "", fmt.Errorf("memory: merged completion of task %d for %q: %w: the task is one of instance %q; commit the episode of the task's own instance", c.TaskID, id, store.ErrInvalidArgument, t.t.InstanceID)
	}
	busy := func(why string) error {
		return fmt.Errorf("memory: merged completion of task %d for %q: %w (%s); complete the task with CompleteActivity", c.TaskID, id, store.ErrInstanceBusy, why)
	}
	in := s.instances[id]
	switch {
	case in == nil:
		return nil, "", busy("the instance does not exist")
	case in.inst.Kind != store.KindOrchestration:
		return nil, "", busy("the instance is an entity")
	case in.lease.live(now):
		return nil, "", busy("the instance is leased")
	case in.inst.ExecutionID != c.ExecutionID || len(in.history) != c.HistoryLen:
		return nil, "", busy(fmt.Sprintf("the instance is at execution %q, %d history chunks; the episode was computed on %q, %d",
			in.inst.ExecutionID, len(in.history), c.ExecutionID, c.HistoryLen))
	}
	for _, m := range in.inbox {
		if !m.m.VisibleAt.After(now) {
			return nil, "", busy("a message is waiting for the instance")
		}
	}
	s.deleteTask(t)
	return in, c.Lease.Owner, nil
}

// start creates a sub-orchestration, or delivers OnConflict when an active instance (or an
// entity) holds the ID.
func (s *Store) start(st store.Start, now time.Time, eff *effects) {
	id := st.Instance.ID
	if old := s.instances[id]; old != nil {
		if old.inst.Status.Active() || old.inst.Kind != store.KindOrchestration {
			if st.OnConflict.InstanceID != "" {
				if kind, ok := s.deliver(st.OnConflict, now); ok {
					eff.work(kind)
				}
			}
			return
		}
		s.deleteAll(id)
	}
	s.createInstance(st.Instance, st.Message, now)
	eff.orchestration = true
	eff.changed = append(eff.changed, id)
}

// addTask adds an activity task.
func (s *Store) addTask(t store.Task, now time.Time) *task {
	s.lastTask++
	t.ID = s.lastTask
	t.Data = bytes.Clone(t.Data)
	if t.Data == nil {
		t.Data = []byte{}
	}
	x := &task{t: t}
	s.tasks[t.ID] = x
	set := s.tasksOf[t.InstanceID]
	if set == nil {
		set = make(map[int64]*task)
		s.tasksOf[t.InstanceID] = set
	}
	set[t.ID] = x
	s.refreshTask(x, now)
	return x
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
	err := s.write(ctx, "claim activities", func(now time.Time, eff *effects) error {
		s.expire(now)
		eff.claim = true
		defer func() { eff.took = len(work) > 0 }()
		order := s.claimOrder(store.ActivityWorkKind, names, func(name string) bool {
			q := s.readyTask[name]
			return q != nil && q.next(now) != nil
		})
		if len(order) == 0 {
			return nil
		}
		s.lastToken++
		l := lease{owner: owner, token: s.lastToken, expires: now.Add(leaseFor)}
		for _, name := range order {
			q := s.readyTask[name]
			for q != nil && len(work) < max {
				t := q.next(now)
				if t == nil {
					break
				}
				s.leaseTask(t, l, now)
				out := t.t
				out.Data = bytes.Clone(out.Data)
				work = append(work, store.ActivityWork{Task: out, Lease: store.Lease{Owner: owner, Token: l.token}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(work, func(a, b store.ActivityWork) int { return cmp.Compare(a.Task.ID, b.Task.ID) })
	return work, nil
}

// CompleteActivity deletes the task and delivers its result, if the lease still holds.
func (s *Store) CompleteActivity(ctx context.Context, taskID int64, l store.Lease, result store.Message) error {
	return s.write(ctx, "complete activity", func(now time.Time, eff *effects) error {
		t := s.tasks[taskID]
		if t == nil || l.Token == 0 || t.lease.token != l.Token || t.lease.owner != l.Owner {
			return fmt.Errorf("memory: complete activity task %d: %w (claimed again, or its instance was replaced or purged); drop the result", taskID, store.ErrLeaseLost)
		}
		s.deleteTask(t)
		if result.InstanceID == "" {
			result.InstanceID = t.t.InstanceID
		}
		if kind, ok := s.deliver(result, now); ok {
			eff.work(kind)
		}
		return nil
	})
}

// RenewLeases extends the leases of the claims that still hold.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []store.Claim, leaseFor time.Duration) error {
	if owner == "" {
		return errors.New("memory: renew leases: empty owner")
	}
	if leaseFor <= 0 {
		return fmt.Errorf("memory: renew leases: lease duration %v is not positive", leaseFor)
	}
	if len(claims) == 0 {
		return nil // nothing to renew; liveness means nothing to a store of one process
	}
	for _, c := range claims {
		if c.Lease.Owner != owner {
			return fmt.Errorf("memory: renew leases of %q: a claim of %q is among them", owner, c.Lease.Owner)
		}
		switch c.Kind {
		case store.OrchestrationWorkKind, store.EntityWorkKind, store.ActivityWorkKind:
		default:
			return fmt.Errorf("memory: renew leases: claim of unknown kind %d", int(c.Kind))
		}
	}
	return s.write(ctx, "renew leases", func(now time.Time, eff *effects) error {
		until := now.Add(leaseFor)
		for _, c := range claims {
			l := lease{owner: owner, token: c.Lease.Token, expires: until}
			if c.Kind == store.ActivityWorkKind {
				if t := s.tasks[c.TaskID]; t != nil && t.lease.token == l.token && t.lease.owner == owner && l.token != 0 {
					s.leaseTask(t, l, now)
				}
			} else if in := s.instances[c.InstanceID]; in != nil && in.lease.token == l.token && in.lease.owner == owner && l.token != 0 {
				s.leaseInstance(in, l, now)
			}
		}
		return nil
	})
}

// ReleaseLeases drops every lease held by owner.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	if owner == "" {
		return errors.New("memory: release leases: empty owner")
	}
	return s.write(ctx, "release leases", func(now time.Time, eff *effects) error {
		for _, in := range s.instances {
			if in.lease.token != 0 && in.lease.owner == owner {
				in.lease = lease{}
				s.refresh(in, now)
				eff.orchestration, eff.entity = true, true
			}
		}
		for _, t := range s.tasks {
			if t.lease.token != 0 && t.lease.owner == owner {
				t.lease = lease{}
				s.refreshTask(t, now)
				eff.activity = true
			}
		}
		return nil
	})
}

// Setting returns a setting of the hub, storing init first when there is none (see store.Store).
func (s *Store) Setting(ctx context.Context, name string, init []byte) ([]byte, error) {
	var v []byte
	var found bool
	err := s.read(ctx, "setting "+name, func(time.Time) error {
		v, found = s.settings[name]
		v = bytes.Clone(v)
		return nil
	})
	if err != nil || found || init == nil {
		return v, err
	}
	err = s.write(ctx, "store setting "+name, func(time.Time, *effects) error {
		// Another caller may have stored it first: what is stored now is the answer.
		if _, ok := s.settings[name]; !ok {
			s.settings[name] = bytes.Clone(init)
		}
		v = bytes.Clone(s.settings[name])
		return nil
	})
	return v, err
}

func checkClaim(owner string, names store.Names, max int, leaseFor time.Duration) error {
	switch {
	case owner == "":
		return errors.New("memory: claim: empty owner")
	case max <= 0:
		return fmt.Errorf("memory: claim: max is %d, want at least 1", max)
	case leaseFor <= 0:
		return fmt.Errorf("memory: claim: lease duration %v is not positive", leaseFor)
	}
	if err := names.Check(); err != nil {
		return fmt.Errorf("memory: claim: %w", err)
	}
	return nil
}
