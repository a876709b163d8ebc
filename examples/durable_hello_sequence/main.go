// Command durable_hello_sequence is the hello-sequence function app: an HTTP starter launches the
// orchestrator hello_sequence_orchestrator, which calls the activity say_hello for Tokyo, Seattle
// and London, in order. It runs on the embedded SQLite store (reprise.db in the working
// directory) and listens on 127.0.0.1:7071.
//
//	go run ./examples/durable_hello_sequence
//	curl -i -X POST http://127.0.0.1:7071/api/start-sequence
//
// The POST answers 202 Accepted with the management URLs; poll statusQueryGetUri until
// runtimeStatus is Completed. Stop the app at any point and start it again: unfinished instances
// go on where they stopped. See README.md next to this file for a whole session.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

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

// newApp builds the function app. The management API is anonymous, as under the Functions Core
// Tools on a developer's machine, unless REPRISE_MANAGEMENT_AUTH=system asks for the system key
// (REPRISE_SYSTEM_KEY, or the one the host generates): an option would win over the variable, so
// the app gives it only when the variable leaves the choice open.
func newApp(opts ...reprise.Option) *reprise.App {
	if os.Getenv("REPRISE_MANAGEMENT_AUTH") == "" {
		opts = append([]reprise.Option{reprise.WithAnonymousManagement()}, opts...)
	}
	app := reprise.NewApp(opts...)
	app.Register(SayHello, HelloSequence)
	app.HandleFunc("POST /api/start-sequence", func(w http.ResponseWriter, r *http.Request) {
		id, err := HelloSequence.Start(r.Context(), app.Client(), reprise.None{})
		switch {
		case errors.Is(err, reprise.ErrInstanceExists): // only when an ID is chosen (WithInstanceID)
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, "could not start hello_sequence_orchestrator: "+err.Error(), http.StatusInternalServerError)
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}, reprise.AuthAnonymous)
	return app
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().ListenAndServe(ctx); err != nil {
		log.Fatal(err)
	}
}
