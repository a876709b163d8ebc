// Package hello holds the hello-sequence functions of the durabletask-go interop: the
// orchestrator HelloSequence calls the activity SayHello for Tokyo, Seattle and London, in
// order, and returns the greetings. cmd/worker serves them to benchmarks; the tests run them too.
package hello

import (
	"fmt"

	"github.com/microsoft/durabletask-go/task"
)

// The registered names, as clients schedule them.
const (
	OrchestratorName = "HelloSequence"
	ActivityName     = "SayHello"
)

// Cities are the inputs of HelloSequence's three SayHello calls, in order.
var Cities = []string{"Tokyo", "Seattle", "London"}

// Output is HelloSequence's JSON output, as a client reads it.
const Output = `["Hello, Tokyo!","Hello, Seattle!","Hello, London!"]`

// HelloSequence calls SayHello once per city, each after the previous one returned.
func HelloSequence(ctx *task.OrchestrationContext) (any, error) {
	greetings := make([]string, 0, len(Cities))
	for _, city := range Cities {
		var greeting string
		if err := ctx.CallActivity(ActivityName, task.WithActivityInput(city)).Await(&greeting); err != nil {
			return nil, err
		}
		greetings = append(greetings, greeting)
	}
	return greetings, nil
}

// SayHello greets its input, a city's name.
func SayHello(ctx task.ActivityContext) (any, error) {
	var city string
	if err := ctx.GetInput(&city); err != nil {
		return nil, fmt.Errorf("SayHello wants a JSON string: %w", err)
	}
	return "Hello, " + city + "!", nil
}

// Register adds the functions named in names to r; no names means all of them.
func Register(r *task.TaskRegistry, names ...string) error {
	if len(names) == 0 {
		names = []string{OrchestratorName, ActivityName}
	}
	for _, name := range names {
		var err error
		switch name {
		case OrchestratorName:
			err = r.AddOrchestratorN(name, HelloSequence)
		case ActivityName:
			err = r.AddActivityN(name, SayHello)
		default:
			err = fmt.Errorf("no function %q: there are %s and %s", name, OrchestratorName, ActivityName)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
