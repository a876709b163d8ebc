package reprisetest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

// The current code of an orchestrator whose instances run in production: a fraud check was
// added between the reservation and the wait for payment, guarded by IsPatched so that the
// instances already past that point keep their recorded path.
var (
	patchedReserve    = reprise.NewActivity("replay_reserve", func(_ context.Context, order string) (string, error) { return "reserved " + order, nil })
	patchedFraudCheck = reprise.NewActivity("replay_fraud_check", func(_ context.Context, order string) (bool, error) { return true, nil })
	patchedShip       = reprise.NewActivity("replay_ship", func(_ context.Context, order string) (string, error) { return "shipped " + order, nil })

	patchedShipOrder = reprise.NewOrchestrator("replay_ship_order", func(ctx *reprise.OrchestrationContext, order string) (string, error) {
		if _, err := patchedReserve.Call(ctx, order).Await(); err != nil {
			return "", err
		}
		if ctx.IsPatched("fraud-check") {
			if ok, err := patchedFraudCheck.Call(ctx, order).Await(); err != nil || !ok {
				return "", fmt.Errorf("fraud check: ok %v, err %v", ok, err)
			}
		}
		if _, err := reprise.WaitForEvent[reprise.None](ctx, "Paid", 0).Await(); err != nil {
			return "", err
		}
		return patchedShip.Call(ctx, order).Await()
	})
)

// checkProductionHistories is what a test in CI does, with the histories exported from
// production by `reprise instances export --dir testdata/replay/ship_order --name replay_ship_order`:
//
//	func TestProductionHistoriesReplay(t *testing.T) {
//		reprisetest.CheckReplay(t, patchedShipOrder, "testdata/replay/ship_order")
//	}
func checkProductionHistories(t testing.TB) {
	reprisetest.CheckReplay(t, patchedShipOrder, "testdata/replay/ship_order")
	// A history from a version that shipped before payment: the current code no longer
	// replays it, and CheckReplay says where.
	reprisetest.CheckReplay(t, patchedShipOrder, "testdata/replay/ship_order_must_fail/v0-completed.json")
}

// replayPrintingT stands in for the *testing.T of a test, so that the example can show what a test
// reports: the first line of each failure.
type replayPrintingT struct{ testing.TB }

func (replayPrintingT) Helper() {}

func (replayPrintingT) Errorf(format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Println("FAIL:", msg)
}

func ExampleCheckReplay() {
	checkProductionHistories(replayPrintingT{})
	// Output:
	// FAIL: reprisetest.CheckReplay: testdata/replay/ship_order_must_fail/v0-completed.json: instance "v0-completed": replay history: non-deterministic orchestrator: history has CallActivity #1 "replay_ship", but the code did not schedule it; orchestrator code must make the same durable calls in the same order on every replay (deploy code that matches, then rewind the instance)
}
