// Command http_orchestrator is a function app with one generic HTTP starter: POST
// /api/orchestrators/{functionName} starts the orchestrator named in the route, with the request
// body (if any) as its input. The app registers hello_orchestrator, which calls the activity
// hello with "Seoul". It runs on the embedded SQLite store (reprise.db in the working directory)
// and listens on 127.0.0.1:7071.
//
//	go run ./examples/http_orchestrator
//	curl -i -X POST http://127.0.0.1:7071/api/orchestrators/hello_orchestrator
//
// See README.md next to this file for a whole session.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/reprise-dev/reprise"
)

// Hello is the activity.
var Hello = reprise.NewActivity("hello", func(ctx context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
})

// HelloOrchestrator calls hello for Seoul and returns the greeting.
var HelloOrchestrator = reprise.NewOrchestrator("hello_orchestrator",
	func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return Hello.Call(ctx, "Seoul").Await()
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
	app.Register(Hello, HelloOrchestrator)
	app.HandleFunc("POST /api/orchestrators/{functionName}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("functionName")
		input, err := readInput(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, err := app.Client().StartNew(r.Context(), name, input)
		switch {
		case errors.Is(err, reprise.ErrNotRegistered):
			writeError(w, http.StatusNotFound, "no orchestrator named "+name+" in this app (it has hello_orchestrator)")
			return
		case errors.Is(err, reprise.ErrInstanceExists): // only when an ID is chosen (WithInstanceID)
			writeError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, "could not start "+name+": "+err.Error())
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}, reprise.AuthAnonymous)
	return app
}

// readInput returns the request body as the orchestrator's input: JSON, or null when empty.
func readInput(r *http.Request) (json.RawMessage, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, errors.New("could not read the request body: " + err.Error())
	}
	if len(body) == 0 {
		return json.RawMessage("null"), nil
	}
	if !json.Valid(body) {
		return nil, errors.New("the request body must be JSON (the orchestrator's input) or empty")
	}
	return body, nil
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().ListenAndServe(ctx); err != nil {
		log.Fatal(err)
	}
}
