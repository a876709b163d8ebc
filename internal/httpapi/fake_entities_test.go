package httpapi

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/entity"
	"github.com/reprise-dev/reprise/store"
)

// The fake's entities follow the control plane's rules: IDs are checked, an entity is created by
// its first signal, and the instance routes do not see entities (they are in their own map).

// addEntity stores an entity modified n seconds after baseTime; state nil means no state.
func (f *fakeBackend) addEntity(name, key string, state string, n int) control.EntityRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := store.EntityInstanceID(name, key)
	rec := control.EntityRecord{InstanceID: id, Name: strings.ToLower(name), Key: key,
		LastModified: baseTime.Add(time.Duration(n) * time.Second)}
	if state != "" {
		rec.Exists, rec.State = true, []byte(state)
	}
	f.entities[id] = rec
	return rec
}

// setEntity changes a stored entity.
func (f *fakeBackend) setEntity(id string, change func(*control.EntityRecord)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.entities[id]
	change(&rec)
	f.entities[id] = rec
}

func (f *fakeBackend) signalLog() []control.SignalRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

func (f *fakeBackend) HasEntity(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entityNames) == 0 {
		return true
	}
	return slices.ContainsFunc(f.entityNames, func(n string) bool { return strings.EqualFold(n, name) })
}

func (f *fakeBackend) SignalEntity(_ context.Context, r control.SignalRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	if _, err := control.CheckEntityID(r.EntityID); err != nil {
		return errKind(KindInvalidInput, "signal entity: %v", err)
	}
	r.Input = slices.Clone(r.Input)
	f.signals = append(f.signals, r)
	if _, ok := f.entities[r.EntityID]; !ok {
		name, key, _ := store.ParseEntityInstanceID(r.EntityID)
		f.entities[r.EntityID] = control.EntityRecord{InstanceID: r.EntityID, Name: name, Key: key, LastModified: baseTime}
	}
	return nil
}

func (f *fakeBackend) GetEntity(_ context.Context, id string, withState bool) (control.EntityRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return control.EntityRecord{}, f.failWith
	}
	rec, ok := f.entities[id]
	if !ok {
		return control.EntityRecord{}, errKind(KindNotFound, "entity %q not found", id)
	}
	if !withState {
		rec.State = nil
	}
	rec.Ops = nil
	return rec, nil
}

func (f *fakeBackend) EntityDetail(ctx context.Context, id string) (control.EntityRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return control.EntityRecord{}, f.failWith
	}
	rec, ok := f.entities[id]
	if !ok {
		return control.EntityRecord{}, errKind(KindNotFound, "entity %q not found", id)
	}
	return rec, nil
}

// sortedEntities returns the entities ordered by instance ID.
func (f *fakeBackend) sortedEntities() []control.EntityRecord {
	all := make([]control.EntityRecord, 0, len(f.entities))
	for _, rec := range f.entities {
		all = append(all, rec)
	}
	slices.SortFunc(all, func(a, b control.EntityRecord) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return all
}

// QueryEntities pages by position; the token is "epos-N".
func (f *fakeBackend) QueryEntities(_ context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastEntityQ = q
	if f.failWith != nil {
		return nil, "", f.failWith
	}
	prefix := q.IDPrefix
	if q.Name != "" {
		prefix = "@" + strings.ToLower(q.Name) + "@"
	}
	var all []control.EntityRecord
	for _, rec := range f.sortedEntities() {
		if !strings.HasPrefix(rec.InstanceID, prefix) || !q.IncludeTransient && !rec.Exists ||
			!q.LastModifiedFrom.IsZero() && rec.LastModified.Before(q.LastModifiedFrom) ||
			!q.LastModifiedTo.IsZero() && !rec.LastModified.Before(q.LastModifiedTo) {
			continue
		}
		if !q.WithState {
			rec.State = nil
		}
		rec.Ops = nil
		all = append(all, rec)
	}
	return fakePage(all, "epos-", q.ContinuationToken, q.PageSize)
}

// CleanEntityStorage looks at two entities per call, after the ID in the token ("after-ID"). A
// lock is orphaned when its holder's ID starts with "gone-"; an entity is empty when it has no
// state, lock or backlog (the fake has no idle time).
func (f *fakeBackend) CleanEntityStorage(_ context.Context, r control.CleanRequest) (control.CleanResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleans = append(f.cleans, r)
	if f.failWith != nil {
		return control.CleanResult{}, f.failWith
	}
	after, ok := strings.CutPrefix(r.ContinuationToken, "after-")
	if r.ContinuationToken != "" && !ok {
		return control.CleanResult{}, errKind(KindInvalidInput, "invalid continuation token %q", r.ContinuationToken)
	}
	var page []control.EntityRecord
	for _, rec := range f.sortedEntities() {
		if rec.InstanceID > after {
			page = append(page, rec)
		}
	}
	var res control.CleanResult
	if len(page) > 2 {
		page = page[:2]
		res.ContinuationToken = "after-" + page[1].InstanceID
	}
	for _, rec := range page {
		switch {
		case r.ReleaseOrphanedLocks && strings.HasPrefix(rec.LockedBy, "gone-"):
			rec.LockedBy = ""
			f.entities[rec.InstanceID] = rec
			res.Released++
		case r.RemoveEmpty && !rec.Exists && rec.LockedBy == "" && rec.Backlog == 0:
			delete(f.entities, rec.InstanceID)
			res.Removed++
		}
	}
	return res, nil
}

// ops is a short list of operations for EntityDetail.
func ops() []entity.Op {
	return []entity.Op{
		{Time: baseTime, Name: "add", RequestID: "r1"},
		{Time: baseTime.Add(time.Second), Name: "get", RequestID: "r2", Caller: "orch1", Failed: true},
	}
}
