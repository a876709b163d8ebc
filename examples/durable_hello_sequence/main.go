// Command durable_hello_sequence runs the hello-sequence orchestration on the embedded SQLite
// store (reprise.db in the working directory): the orchestrator calls the activity say_hello for
// Tokyo, Seattle and London, in order, and the program prints the finished instance's status.
//
// Run it with: go run ./examples/durable_hello_sequence
//
// Kill it at any point and run it again: instances left unfinished in reprise.db are resumed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/reprise-dev/reprise"
)

// SayHello is the activity: ordinary Go code, run at least once.
var SayHello = reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
})

// HelloSequence is the orchestrator: deterministic code, replayed from its history.
var HelloSequence = reprise.NewOrchestrator("hello_sequence_orchestrator",
	func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			greeting, err := SayHello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, greeting)
		}
		return out, nil
	})

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	app := reprise.NewApp() // the embedded SQLite store, reprise.db
	app.Register(SayHello, HelloSequence)
	if err := app.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(shutdownCtx); err != nil {
			log.Print(err)
		}
	}()

	id, err := HelloSequence.Start(ctx, app.Client(), reprise.None{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("started instance", id)
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	status, _ := json.MarshalIndent(map[string]any{
		"name":            inst.Name,
		"instanceId":      inst.ID,
		"runtimeStatus":   inst.Status.String(),
		"input":           json.RawMessage(orNull(inst.Input)),
		"customStatus":    json.RawMessage(orNull(inst.CustomStatus)),
		"output":          json.RawMessage(orNull(inst.Output)),
		"createdTime":     inst.CreatedAt.Format(time.RFC3339),
		"lastUpdatedTime": inst.LastUpdatedAt.Format(time.RFC3339),
	}, "", "  ")
	fmt.Println(string(status))
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}
