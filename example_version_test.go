package reprise_test

import (
	"context"
	"fmt"
	"log"

	"github.com/reprise-dev/reprise"
)

// Instances keep the version they were started with; a rolling deploy asks how many of the old
// version are still running before it retires the hosts that run them.
func ExampleClient_ListInstances_byVersion() {
	greet := reprise.NewOrchestrator("greet", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
		return "Hello " + name + "!", nil
	})

	app, stop := runExample(greet)
	defer stop()
	ctx := context.Background()
	c := app.Client()
	for _, version := range []string{"1.0", "2.0", "2.0"} {
		id, err := greet.Start(ctx, c, "Tokyo", reprise.WithVersion(version))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.WaitForCompletion(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	page, _, err := c.ListInstances(ctx, reprise.Query{Versions: []string{"2.0"}, WithoutPayloads: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, inst := range page {
		fmt.Println(inst.Name, inst.Version, inst.Status)
	}
	active, err := c.CountInstances(ctx, reprise.Query{Versions: []string{"1.0"},
		Statuses: []reprise.RuntimeStatus{reprise.StatusPending, reprise.StatusRunning, reprise.StatusSuspended}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("active instances of 1.0:", len(active))
	// Output:
	// greet 2.0 Completed
	// greet 2.0 Completed
	// active instances of 1.0: 0
}
