package reprisetest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/sqlite"
)

// hub is the task hub of the harness's store and App.
const hub = "reprisetest"

// openStore is the one place that chooses the harness's store. Every store the harness may
// use takes the virtual clock (now) for visibility and leases. For now it is SQLite in the
// test's temporary directory, without fsync (a test does not survive a power loss anyway);
// an in-memory store can take its place here without any other change.
func openStore(ctx context.Context, t testing.TB, now func() time.Time) (store.Store, error) {
	path := filepath.Join(t.TempDir(), "reprise.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{Hub: hub, Durability: sqlite.DurabilityRelaxed, Now: now})
	if err != nil {
		return nil, fmt.Errorf("reprisetest: open the test store: %w", err)
	}
	return st, nil
}
