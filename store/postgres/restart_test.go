package postgres

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// TestSurvivesDatabaseRestart restarts the PostgreSQL server in the middle of a run of commits and
// checks that every acknowledged commit survived and that the store works again afterwards,
// wake-ups from other hosts included. It disturbs every other user of the server, so it runs only
// when REPRISE_TEST_POSTGRES_RESTART=1, against the local cluster (pg_ctlcluster).
func TestSurvivesDatabaseRestart(t *testing.T) {
	if os.Getenv("REPRISE_TEST_POSTGRES_RESTART") != "1" {
		t.Skip("restarts the PostgreSQL server: set REPRISE_TEST_POSTGRES_RESTART=1 to run it")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("no local cluster under /etc/postgresql to restart (%v)", err)
	}
	version := versions[len(versions)-1].Name()
	dsn := pgtest.DSN(t)
	s := openStore(t, dsn, Options{Hub: "h"})
	other := openStore(t, dsn, Options{Hub: "h"})

	const lease = 2 * time.Second // leases of claims lost in the restart come back soon
	var created, committed []string
	var restarted atomic.Bool
	restartDone := make(chan error, 1)
	afterRestart := 0
	failures := 0
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; afterRestart < 30; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not work again after the restart (%d commits acknowledged after it, %d failures)", afterRestart, failures)
		}
		if len(committed) == 30 && !restarted.Swap(true) {
			go func() {
				out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart").CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, out)
				}
				restartDone <- err
			}()
		}
		id := fmt.Sprintf("i%04d", i)
		err := s.CreateInstance(t.Context(), store.Instance{ID: id, Name: "o", Status: store.StatusPending},
			store.Message{Data: []byte("start")}, store.ReuseNever)
		if err == nil {
			created = append(created, id)
		}
		work, err2 := s.ClaimOrchestrations(t.Context(), "n", store.Names{"o"}, 100, lease)
		for _, w := range work {
			e := store.Episode{Lease: w.Lease, Instance: w.Instance, History: [][]byte{[]byte(w.Instance.ID)}}
			for _, m := range w.Messages {
				e.Consumed = append(e.Consumed, m.ID)
			}
			e.Instance.Status = store.StatusRunning
			if err := s.CommitEpisode(t.Context(), e); err != nil {
				failures++
				continue
			}
			committed = append(committed, w.Instance.ID)
			if restarted.Load() {
				select {
				case err := <-restartDone:
					if err != nil {
						t.Fatalf("restart: %v", err)
					}
					restartDone = nil // a nil channel: the restart is over
				default:
				}
				if restartDone == nil {
					afterRestart++
				}
			}
		}
		if err != nil || err2 != nil {
			failures++
			time.Sleep(20 * time.Millisecond) // the engine would back off likewise
		}
	}
	t.Logf("%d creates and %d commits acknowledged, %d operations failed during the restart", len(created), len(committed), failures)
	if failures == 0 {
		t.Log("no operation failed: the restart fell between operations")
	}

	for _, id := range created {
		if _, err := s.GetInstance(t.Context(), id); err != nil {
			t.Fatalf("acknowledged create of %s lost: %v", id, err)
		}
	}
	for _, id := range committed {
		h, err := s.History(t.Context(), id)
		if err != nil || !slices.ContainsFunc(h, func(c []byte) bool { return string(c) == id }) {
			t.Fatalf("acknowledged commit of %s lost: history %q, %v", id, h, err)
		}
	}

	// The other host's listener reconnected: it hears of new work again.
	sig := other.WorkSignal(store.OrchestrationWorkKind)
	n := 0
	storetest.Eventually(t, "the other host to hear of new work after the restart", func() bool {
		drain(sig)
		n++
		create(t, s, fmt.Sprintf("after-%d", n))
		select {
		case <-sig:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}
