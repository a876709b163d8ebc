package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// An orchestration's entity messages reach the entities' inboxes through a real store's commit,
// with the unlocks of the locks it still held when it completed, after the request (entities in
// ID order, as ClaimEntities returns them; each inbox in order).
func TestEntityMessagesCommitted(t *testing.T) {
	st := openSQLite(t)
	reg := registry{orchestrators: map[string]replay.Func{
		"locks": func(c *replay.Context) ([]byte, error) {
			if _, err := c.LockEntities([]string{"@acct@b", "@acct@a"}); err != nil {
				return nil, err
			}
			if err := c.SignalEntity("@log@x", "note", []byte(`1`), time.Time{}); err != nil {
				return nil, err
			}
			return []byte(`"done"`), nil
		},
	}}
	newEngine(t, engine.Options{Store: st, Registry: reg})
	start(t, st, "locks", "o", nil)
	if inst := waitDone(t, st, "o", 10*time.Second); inst.Status != store.StatusCompleted {
		t.Fatalf("status %s", inst.Status)
	}
	work, err := st.ClaimEntities(t.Context(), "test", store.AllNamesExcept(), 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range work {
		if w.Instance.Kind != store.KindEntity {
			t.Errorf("%s is a %s", w.Instance.ID, w.Instance.Kind)
		}
		for _, m := range w.Messages {
			ev, err := history.DecodeEvent(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s from %s", w.Instance.ID, ev.Type, ev.Parent.InstanceID))
		}
	}
	want := `@acct@a EntityLockRequested from o
@acct@a EntityUnlockSent from o
@acct@b EntityUnlockSent from o
@log@x EntityOperationSignaled from o`
	if strings.Join(got, "\n") != want {
		t.Errorf("entity inboxes:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}
