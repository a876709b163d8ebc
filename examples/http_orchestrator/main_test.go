package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/internal/hosttest"
)

// TestStartByNameOverHTTP runs the seed's session: start hello_orchestrator through the route,
// then read its status from the management API as the Python original's users do.
func TestStartByNameOverHTTP(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)

	resp := hosttest.Do(t, "POST", srv.URL+"/api/orchestrators/hello_orchestrator", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s, want 202", resp.StatusCode, resp.Body)
	}
	var urls struct {
		ID                string `json:"id"`
		StatusQueryGetURI string `json:"statusQueryGetUri"`
	}
	resp.JSON(t, &urls)
	wantPrefix := srv.URL + "/runtime/webhooks/durabletask/instances/" + urls.ID + "?taskHub=default&connection=Storage"
	if urls.StatusQueryGetURI != wantPrefix {
		t.Errorf("statusQueryGetUri = %q, want %q", urls.StatusQueryGetURI, wantPrefix)
	}

	hosttest.WaitDone(t, app, urls.ID)
	status := hosttest.Do(t, "GET", srv.URL+"/runtime/webhooks/durabletask/instances/"+url.PathEscape(urls.ID)+"?taskHub=default&connection=Storage", nil)
	var got struct {
		Name          string `json:"name"`
		RuntimeStatus string `json:"runtimeStatus"`
		Output        any    `json:"output"`
	}
	status.JSON(t, &got)
	if status.StatusCode != http.StatusOK || got.RuntimeStatus != "Completed" || got.Output != "Hello Seoul!" || got.Name != "hello_orchestrator" {
		t.Fatalf("status: %d %s, want 200 Completed with output \"Hello Seoul!\"", status.StatusCode, status.Body)
	}
}

func TestUnknownOrchestratorIs404(t *testing.T) {
	srv := hosttest.Serve(t, newApp(hosttest.Options(t)...))
	resp := hosttest.Do(t, "POST", srv.URL+"/api/orchestrators/no_such_orchestrator", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST unknown: %d %s, want 404", resp.StatusCode, resp.Body)
	}
	var body struct{ Error string }
	resp.JSON(t, &body)
	if !strings.Contains(body.Error, "no_such_orchestrator") {
		t.Errorf("error %q does not name the orchestrator", body.Error)
	}
}

func TestInputMustBeJSON(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)
	resp := hosttest.Do(t, "POST", srv.URL+"/api/orchestrators/hello_orchestrator", []byte("{not json"))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST with a malformed body: %d %s, want 400", resp.StatusCode, resp.Body)
	}
	resp = hosttest.Do(t, "POST", srv.URL+"/api/orchestrators/hello_orchestrator", []byte(`{"city":"Busan"}`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with a JSON body: %d %s, want 202", resp.StatusCode, resp.Body)
	}
	var urls struct{ ID string }
	resp.JSON(t, &urls)
	inst := hosttest.WaitDone(t, app, urls.ID)
	if string(inst.Input) != `{"city":"Busan"}` {
		t.Errorf("input = %s, want the request body", inst.Input)
	}
}
