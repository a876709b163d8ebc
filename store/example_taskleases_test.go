package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/memory"
)

// An episode's commit that leases one of its tasks to the committer (local dispatch): the
// leased task is handed back with its lease, and nobody else can claim it; the other task is
// anyone's.
func ExampleTaskLease() {
	ctx := context.Background()
	st := memory.New(memory.Options{})
	defer st.Close()

	inst := store.Instance{ID: "order-1", Name: "ProcessOrder", ExecutionID: "e1", Status: store.StatusPending}
	if err := st.CreateInstance(ctx, inst, store.Message{Data: []byte("start")}, store.ReuseNever); err != nil {
		fmt.Println(err)
		return
	}
	work, _ := st.ClaimOrchestrations(ctx, "node-a", store.Names{"ProcessOrder"}, 1, time.Minute)
	w := work[0]
	ep := store.Episode{
		Lease:    w.Lease,
		Instance: w.Instance,
		Consumed: []int64{w.Messages[0].ID},
		Tasks: []store.Task{
			{Name: "Charge", Data: []byte("card")}, // node-a runs it
			{Name: "Ship", Data: []byte("parcel")}, // node-a does not: left unleased
		},
		LeaseTasks: &store.TaskLease{For: time.Minute, Tasks: []int{0}},
	}
	if err := st.CommitEpisode(ctx, ep); err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range ep.LeaseTasks.Leased {
		fmt.Println("leased to", t.Lease.Owner+":", t.Task.Name)
	}
	other, _ := st.ClaimActivities(ctx, "node-b", store.Names{"Charge", "Ship"}, 10, time.Minute)
	for _, t := range other {
		fmt.Println("claimed by node-b:", t.Task.Name)
	}
	// Output:
	// leased to node-a: Charge
	// claimed by node-b: Ship
}
