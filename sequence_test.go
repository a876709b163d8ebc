package reprise_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/reprise-dev/reprise"
)

var sayHello = reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
})

var helloSequence = reprise.NewOrchestrator("hello_sequence_orchestrator",
	func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			greeting, err := sayHello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, greeting)
		}
		return out, nil
	})

func TestHelloSequence(t *testing.T) {
	app := startApp(t, []reprise.Definition{sayHello, helloSequence})
	ctx := testCtx(t)
	id, err := helloSequence.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 {
		t.Errorf("generated ID %q: want 32 hex characters", id)
	}
	inst := waitDone(t, app.Client(), id)
	if inst.Status != reprise.StatusCompleted {
		t.Fatalf("status %s, failure %+v", inst.Status, inst.Failure)
	}
	var got []string
	if err := json.Unmarshal(inst.Output, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"Hello Tokyo!", "Hello Seattle!", "Hello London!"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("output %v, want %v", got, want)
	}
	full, err := app.Client().GetInstance(ctx, id, reprise.WithHistory())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range full.History {
		counts[e.Type]++
	}
	if counts["TaskScheduled"] != 3 || counts["TaskCompleted"] != 3 || counts["ExecutionStarted"] != 1 || counts["ExecutionCompleted"] != 1 {
		t.Errorf("history event counts %v", counts)
	}
}
