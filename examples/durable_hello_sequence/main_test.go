package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/reprise-dev/reprise/internal/hosttest"
)

var secondsUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// TestStartSequenceOverHTTP runs the seed's curl session: POST the starter, then follow the
// status URL of the 202 response until the orchestration has completed.
func TestStartSequenceOverHTTP(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)

	resp := hosttest.Do(t, "POST", srv.URL+"/api/start-sequence", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/start-sequence: %d %s, want 202", resp.StatusCode, resp.Body)
	}
	var urls map[string]string
	resp.JSON(t, &urls)
	for _, k := range []string{"id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
		"purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"} {
		if urls[k] == "" {
			t.Errorf("check-status payload has no %s: %s", k, resp.Body)
		}
	}
	if loc := resp.Header.Get("Location"); loc != urls["statusQueryGetUri"] {
		t.Errorf("Location = %q, want the statusQueryGetUri %q", loc, urls["statusQueryGetUri"])
	}
	if ra := resp.Header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After = %q, want 10", ra)
	}

	hosttest.WaitDone(t, app, urls["id"])
	status := hosttest.Do(t, "GET", urls["statusQueryGetUri"], nil)
	if status.StatusCode != http.StatusOK {
		t.Fatalf("GET statusQueryGetUri: %d %s, want 200", status.StatusCode, status.Body)
	}
	var got map[string]json.RawMessage
	status.JSON(t, &got)
	want := map[string]string{
		"name":          `"hello_sequence_orchestrator"`,
		"instanceId":    `"` + urls["id"] + `"`,
		"runtimeStatus": `"Completed"`,
		"input":         `null`,
		"customStatus":  `null`,
		"output":        `["Hello Tokyo!","Hello Seattle!","Hello London!"]`,
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	for _, k := range []string{"createdTime", "lastUpdatedTime"} {
		var ts string
		if err := json.Unmarshal(got[k], &ts); err != nil || !secondsUTC.MatchString(ts) {
			t.Errorf("%s = %s, want yyyy-MM-ddTHH:mm:ssZ", k, got[k])
		}
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	if len(got) != 8 {
		t.Errorf("status has keys %v, want exactly name, instanceId, runtimeStatus, input, customStatus, output, createdTime, lastUpdatedTime", keys)
	}
}

func TestStartSequenceRefusesGET(t *testing.T) {
	srv := hosttest.Serve(t, newApp(hosttest.Options(t)...))
	resp := hosttest.Do(t, "GET", srv.URL+"/api/start-sequence", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/start-sequence: %d, want 405", resp.StatusCode)
	}
	if allow := resp.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow = %q, want POST", allow)
	}
}

// TestManagementAuthFromTheEnvironment: the README's REPRISE_MANAGEMENT_AUTH=system requires the
// system key, which the app leaves to the environment (an option would win over it).
func TestManagementAuthFromTheEnvironment(t *testing.T) {
	t.Setenv("REPRISE_MANAGEMENT_AUTH", "system")
	t.Setenv("REPRISE_SYSTEM_KEY", "some-long-secret")
	srv := hosttest.Serve(t, newApp(hosttest.Options(t)...))
	list := srv.URL + "/runtime/webhooks/durabletask/instances"
	if got := hosttest.Do(t, "GET", list, nil).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("list without the key: %d, want 401", got)
	}
	if got := hosttest.Do(t, "GET", list+"?code=some-long-secret", nil).StatusCode; got != http.StatusOK {
		t.Errorf("list with the key: %d, want 200", got)
	}
}
