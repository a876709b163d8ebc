package memory

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// GetInstance returns an instance or store.ErrNotFound.
func (s *Store) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	var out store.Instance
	err := s.read(ctx, "get instance", func(time.Time) error {
		if err := store.CheckID(id); err != nil {
			return fmt.Errorf("memory: get instance: %w", err)
		}
		in := s.instances[id]
		if in == nil {
			return fmt.Errorf("memory: get instance %q: %w", id, store.ErrNotFound)
		}
		out = in.get(true)
		return nil
	})
	return out, err
}

// History returns the history chunks of the instance's current execution, or store.ErrNotFound.
func (s *Store) History(ctx context.Context, id string) ([][]byte, error) {
	var out [][]byte
	err := s.read(ctx, "history", func(time.Time) error {
		if err := store.CheckID(id); err != nil {
			return fmt.Errorf("memory: history: %w", err)
		}
		in := s.instances[id]
		if in == nil {
			return fmt.Errorf("memory: history of %q: %w", id, store.ErrNotFound)
		}
		out = make([][]byte, len(in.history))
		for i, c := range in.history {
			out[i] = bytes.Clone(c)
		}
		return nil
	})
	return out, err
}

// matching returns the instances that match q's filters (not its paging), in no order.
func (s *Store) matching(q store.Query) []*instance {
	statuses := map[store.Status]bool{}
	for _, st := range q.Statuses {
		statuses[st] = true
	}
	name := fold(q.Name)
	var out []*instance
	for _, in := range s.instances {
		x := &in.inst
		switch {
		case x.Kind != q.Kind,
			len(statuses) > 0 && !statuses[x.Status],
			q.Name != "" && fold(x.Name) != name,
			!q.CreatedFrom.IsZero() && x.CreatedAt.Before(q.CreatedFrom),
			!q.CreatedTo.IsZero() && x.CreatedAt.After(q.CreatedTo),
			!q.UpdatedFrom.IsZero() && x.UpdatedAt.Before(q.UpdatedFrom),
			!q.UpdatedTo.IsZero() && !x.UpdatedAt.Before(q.UpdatedTo),
			q.SkipTransient && x.Output == nil,
			len(q.Versions) > 0 && !slices.Contains(q.Versions, x.Version),
			!strings.HasPrefix(x.ID, q.IDPrefix):
			continue
		}
		out = append(out, in)
	}
	return out
}

// ListInstances returns one page of matching instances ordered by creation time, then ID
// (descending with q.NewestFirst).
func (s *Store) ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	if err := q.Check(); err != nil {
		return nil, "", fmt.Errorf("memory: list instances: %w", err)
	}
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	var after struct {
		created int64
		id      string
		ok      bool
	}
	if q.ContinuationToken != "" {
		created, id, err := parseToken(q.ContinuationToken)
		if err != nil {
			return nil, "", err
		}
		after.created, after.id, after.ok = created, id, true
	}
	var page []store.Instance
	var next string
	err := s.read(ctx, "list instances", func(time.Time) error {
		all := s.matching(q)
		order := func(a, b *instance) int {
			return cmp.Or(cmp.Compare(a.inst.CreatedAt.UnixNano(), b.inst.CreatedAt.UnixNano()), strings.Compare(a.inst.ID, b.inst.ID))
		}
		if q.NewestFirst {
			slices.SortFunc(all, func(a, b *instance) int { return order(b, a) })
		} else {
			slices.SortFunc(all, order)
		}
		if after.ok {
			// The page starts after the token's instance, which need not exist any more.
			i := 0
			for ; i < len(all); i++ {
				c := cmp.Or(cmp.Compare(all[i].inst.CreatedAt.UnixNano(), after.created), strings.Compare(all[i].inst.ID, after.id))
				if (c > 0 && !q.NewestFirst) || (c < 0 && q.NewestFirst) {
					break
				}
			}
			all = all[i:]
		}
		bytes := 0
		for _, in := range all {
			if len(page) == size || (q.MaxBytes > 0 && bytes >= q.MaxBytes) {
				last := page[len(page)-1]
				next = makeToken(last.CreatedAt.UnixNano(), last.ID)
				break
			}
			inst := in.get(!q.WithoutPayloads)
			page = append(page, inst)
			bytes += inst.Size()
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// CountInstances counts the instances matching q's filters, by status.
func (s *Store) CountInstances(ctx context.Context, q store.Query) (map[store.Status]int, error) {
	if err := q.Check(); err != nil {
		return nil, fmt.Errorf("memory: count instances: %w", err)
	}
	counts := map[store.Status]int{}
	err := s.read(ctx, "count instances", func(time.Time) error {
		for _, in := range s.matching(q) {
			counts[in.inst.Status]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// A continuation token is the position after the last instance returned: its creation time
// and ID, as SQLite's.
func makeToken(created int64, id string) string { return store.PositionToken(created, id) }

func parseToken(tok string) (int64, string, error) {
	created, id, err := store.ParsePositionToken(tok)
	if err != nil {
		return 0, "", fmt.Errorf("memory: list instances: %w", err)
	}
	return created, id, nil
}

// NextVisibleAt returns the earliest visible time of the messages not yet visible.
func (s *Store) NextVisibleAt(ctx context.Context) (time.Time, error) {
	var next time.Time
	err := s.read(ctx, "next visible time", func(now time.Time) error {
		// Timers consumed, or visible by now, are done with (the clock does not go back).
		for len(s.timers) > 0 && (s.timers[0].gone || !s.timers[0].m.VisibleAt.After(now)) {
			heap.Pop(&s.timers)
		}
		if len(s.timers) > 0 {
			next = s.timers[0].m.VisibleAt
		}
		return nil
	})
	return next, err
}

// Unclaimed counts the ready work of names in neither set.
func (s *Store) Unclaimed(ctx context.Context, orchestrators, activities store.Names) ([]store.Unclaimed, error) {
	type set struct {
		names  map[string]bool
		except bool
	}
	var sets [2]set
	for i, n := range []store.Names{orchestrators, activities} {
		if err := n.Check(); err != nil {
			return nil, fmt.Errorf("memory: unclaimed work: %w", err)
		}
		if excluded, ok := n.Except(); ok {
			n, sets[i].except = excluded, true
		}
		sets[i].names = map[string]bool{}
		for _, name := range n {
			sets[i].names[fold(name)] = true
		}
	}
	// A name is unclaimed when it is not in the claimer's names, or, for a set of every name
	// but some, when it is among the excluded ones.
	unclaimed := func(i int, name string) bool { return sets[i].names[name] == sets[i].except }
	type group struct {
		u   store.Unclaimed
		ids map[string]bool
	}
	groups := map[readyKey]*group{}
	add := func(kind store.WorkKind, name string, id int64, instance string) {
		key := readyKey{store.Kind(kind), fold(name)}
		g := groups[key]
		if g == nil {
			g = &group{u: store.Unclaimed{Kind: kind, Name: name, Oldest: id}, ids: map[string]bool{}}
			groups[key] = g
		}
		g.u.Name = min(g.u.Name, name)
		g.u.Oldest = min(g.u.Oldest, id)
		if instance == "" {
			g.u.Count++
		} else if !g.ids[instance] {
			g.ids[instance] = true
			g.u.Count++
		}
	}
	err := s.read(ctx, "unclaimed work", func(now time.Time) error {
		for _, in := range s.instances {
			if in.inst.Kind != store.KindOrchestration || in.lease.live(now) || !unclaimed(0, fold(in.inst.Name)) {
				continue
			}
			for _, m := range in.inbox {
				if !m.m.VisibleAt.After(now) {
					add(store.OrchestrationWorkKind, in.inst.Name, m.m.ID, in.inst.ID)
				}
			}
		}
		for _, t := range s.tasks {
			if !t.lease.live(now) && unclaimed(1, fold(t.t.Name)) {
				add(store.ActivityWorkKind, t.t.Name, t.t.ID, "")
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []store.Unclaimed
	for _, g := range groups {
		out = append(out, g.u)
	}
	slices.SortFunc(out, func(a, b store.Unclaimed) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), strings.Compare(fold(a.Name), fold(b.Name)))
	})
	return out, nil
}

// Backlog counts the waiting work of every name.
func (s *Store) Backlog(ctx context.Context) (store.Backlog, error) {
	var b store.Backlog
	err := s.read(ctx, "backlog", func(now time.Time) error {
		for _, in := range s.instances {
			n := 0
			for _, m := range in.inbox {
				if !m.m.VisibleAt.After(now) {
					n++
				}
			}
			if in.inst.Kind == store.KindEntity {
				b.EntityMessages += n
			} else {
				b.OrchestrationMessages += n
			}
		}
		for _, t := range s.tasks {
			if !t.lease.live(now) {
				b.ActivityTasks++
			}
		}
		return nil
	})
	if err != nil {
		return store.Backlog{}, err
	}
	return b, nil
}
