package reprisetest

import (
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/memory"
)

// hub is the task hub of the harness's store and App.
const hub = "reprisetest"

// openStore is the one place that chooses the harness's store: the in-memory store, on the
// virtual clock (now) for visibility and leases. It passes the same conformance suite as the
// durable stores, so the engine sees the same behaviour; it is only faster, and forgets.
func openStore(now func() time.Time) store.Store {
	return memory.New(memory.Options{Hub: hub, Now: now})
}
