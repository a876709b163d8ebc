package reprise_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/reprise-dev/reprise"
)

// An HTTP starter: the route starts an orchestration and answers 202 Accepted with the
// management URLs, as an HTTP-triggered function with a durable client does. The caller then
// follows statusQueryGetUri until runtimeStatus is Completed.
func ExampleClient_WriteCheckStatusResponse() {
	greet := reprise.NewOrchestrator("greet", func(ctx *reprise.OrchestrationContext, name string) (string, error) {
		return "Hello " + name + "!", nil
	})

	dir, _ := os.MkdirTemp("", "reprise-example")
	defer os.RemoveAll(dir)
	app := reprise.NewApp(
		reprise.WithSQLiteFile(filepath.Join(dir, "example.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithKeys(reprise.Keys{System: "system-key"}),
	)
	app.Register(greet)
	app.HandleFunc("POST /api/greet/{name}", func(w http.ResponseWriter, r *http.Request) {
		id, err := greet.Start(r.Context(), app.Client(), r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}, reprise.AuthAnonymous)
	if err := app.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer app.Shutdown(context.Background())
	srv := httptest.NewServer(app.Handler()) // in production: app.ListenAndServe(ctx)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/greet/Oslo", "", nil)
	if err != nil {
		log.Fatal(err)
	}
	var urls reprise.ManagementURLs
	json.NewDecoder(resp.Body).Decode(&urls)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location") == urls.StatusQueryGetURI)

	app.Client().WaitForCompletion(context.Background(), urls.ID) // a real caller polls the URL
	resp, err = http.Get(urls.StatusQueryGetURI)                  // it carries the system key
	if err != nil {
		log.Fatal(err)
	}
	var status struct {
		RuntimeStatus string `json:"runtimeStatus"`
		Output        string `json:"output"`
	}
	json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, status.RuntimeStatus, status.Output)
	// Output:
	// 202 true
	// 200 Completed Hello Oslo!
}
