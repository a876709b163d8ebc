package postgres

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
)

// TestDeleteEntityRacingMessages runs DeleteEntity against SendEntityMessages (or SendMessage) to
// the same entity from two stores (two hosts) at once, many times: whichever wins, no message is
// lost or left in the inbox of an entity that was deleted under it, where no claim would find it.
func TestDeleteEntityRacingMessages(t *testing.T) {
	dsn := pgtest.DSN(t)
	hub := randomHub()
	a, b := openStore(t, dsn, Options{Hub: hub}), openStore(t, dsn, Options{Hub: hub})
	ctx := t.Context()
	id := store.EntityInstanceID("counter", "racy")
	names := store.Names{"counter"}
	deleted := 0
	for i := range 60 {
		// An entity without state, lease or messages: deletable.
		if err := a.SendEntityMessages(ctx, []store.Message{{InstanceID: id, Data: []byte("op")}}); err != nil {
			t.Fatal(err)
		}
		work, err := a.ClaimEntities(ctx, "n", names, 10, time.Minute)
		if err != nil || len(work) != 1 {
			t.Fatalf("round %d: claimed %d entities (%v), want 1", i, len(work), err)
		}
		e := store.Episode{Lease: work[0].Lease, Instance: work[0].Instance}
		for _, m := range work[0].Messages {
			e.Consumed = append(e.Consumed, m.ID)
		}
		e.Instance.UpdatedAt = time.Time{}
		if err := a.CommitEpisode(ctx, e); err != nil {
			t.Fatal(err)
		}
		inst, err := a.GetInstance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var sendErr, delErr error
		var removed bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			m := store.Message{InstanceID: id, Data: []byte("late")}
			if i%2 == 1 {
				// SendMessage to an entity that may be deleted under it: delivered, or
				// ErrNotFound, never left behind.
				if sendErr = b.SendMessage(ctx, m); errors.Is(sendErr, store.ErrNotFound) {
					sendErr = b.SendEntityMessages(ctx, []store.Message{m})
				}
				return
			}
			sendErr = b.SendEntityMessages(ctx, []store.Message{m})
		}()
		go func() {
			defer wg.Done()
			removed, delErr = a.DeleteEntity(ctx, id, inst.UpdatedAt)
		}()
		wg.Wait()
		if sendErr != nil || delErr != nil {
			t.Fatalf("round %d: send: %v, delete: %v", i, sendErr, delErr)
		}
		if removed {
			deleted++
		}
		var orphans int
		if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM reprise.inbox m WHERE m.hub = $1
			AND NOT EXISTS (SELECT 1 FROM reprise.instances i WHERE i.hub = m.hub AND i.id = m.instance_id)`, hub).Scan(&orphans); err != nil {
			t.Fatal(err)
		}
		if orphans != 0 {
			t.Fatalf("round %d: %d messages left without their entity (deleted: %v)", i, orphans, removed)
		}
		// The late message is claimable, whichever came first.
		work, err = a.ClaimEntities(ctx, "n", names, 10, time.Minute)
		if err != nil || len(work) != 1 || len(work[0].Messages) != 1 || string(work[0].Messages[0].Data) != "late" {
			t.Fatalf("round %d (deleted: %v): claim after the race = %+v, %v; want the entity with the late message", i, removed, work, err)
		}
		e = store.Episode{Lease: work[0].Lease, Instance: work[0].Instance, Consumed: []int64{work[0].Messages[0].ID}}
		if err := a.CommitEpisode(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("DeleteEntity won %d of 60 races", deleted)
}
