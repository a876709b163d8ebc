package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/memory"
)

// A store on a virtual clock: a timer becomes visible when the clock says so, not when the wall
// clock does.
func Example() {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := memory.New(memory.Options{Now: func() time.Time { return now }})
	defer st.Close()

	inst := store.Instance{ID: "order-1", Name: "ProcessOrder", Status: store.StatusPending}
	timer := store.Message{Data: []byte("wake up"), VisibleAt: now.Add(time.Hour)}
	if err := st.CreateInstance(ctx, inst, timer, store.ReuseNever); err != nil {
		fmt.Println(err)
		return
	}
	names := store.Names{"ProcessOrder"}
	work, _ := st.ClaimOrchestrations(ctx, "node", names, 10, time.Minute)
	next, _ := st.NextVisibleAt(ctx)
	fmt.Println("claimed before the hour:", len(work), "next timer at", next.Format(time.Kitchen))

	now = now.Add(time.Hour) // the test moves the clock
	work, _ = st.ClaimOrchestrations(ctx, "node", names, 10, time.Minute)
	fmt.Println("claimed after the hour:", len(work), string(work[0].Messages[0].Data))
	// Output:
	// claimed before the hour: 0 next timer at 1:00AM
	// claimed after the hour: 1 wake up
}
