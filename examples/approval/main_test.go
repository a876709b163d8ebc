package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

type checkStatus struct {
	ID                string `json:"id"`
	StatusQueryGetURI string `json:"statusQueryGetUri"`
	SendEventPostURI  string `json:"sendEventPostUri"`
}

func start(t *testing.T, url, body string) checkStatus {
	t.Helper()
	resp := hosttest.Do(t, "POST", url, []byte(body))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s, want 202", url, resp.StatusCode, resp.Body)
	}
	var cs checkStatus
	resp.JSON(t, &cs)
	return cs
}

type historyEvent struct {
	EventType    string
	FunctionName string
	Name         string
}

// history reads the instance's history through the management API, as the README's session does.
func history(t *testing.T, statusURL string) []historyEvent {
	t.Helper()
	resp := hosttest.Do(t, "GET", statusURL+"&showHistory=true", nil)
	var st struct{ HistoryEvents []historyEvent }
	resp.JSON(t, &st)
	return st.HistoryEvents
}

func count(events []historyEvent, typ, name string) int {
	n := 0
	for _, e := range events {
		if e.EventType == typ && (name == "" || e.FunctionName == name || e.Name == name) {
			n++
		}
	}
	return n
}

// TestApprovalOverHTTP runs the README's session: start a request under a chosen ID, see a second
// start of that ID refused, raise the approval through sendEventPostUri, and read the outcome and
// the history (the retried budget check, the event, the three notifications).
func TestApprovalOverHTTP(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)
	body := `{"item":"laptop","amount":1800,"requester":"alice"}`

	cs := start(t, srv.URL+"/api/approvals/order-42", body)
	if cs.ID != "order-42" {
		t.Fatalf("id %q, want order-42", cs.ID)
	}
	again := hosttest.Do(t, "POST", srv.URL+"/api/approvals/order-42", []byte(body))
	var refusal struct{ Error string }
	again.JSON(t, &refusal)
	if again.StatusCode != http.StatusConflict || !strings.Contains(refusal.Error, `instance already exists (`) {
		t.Errorf("second start of order-42: %d %s, want 409 saying the instance exists", again.StatusCode, again.Body)
	}

	// An event raised before the orchestration waits for it is kept until it does.
	raise := strings.Replace(cs.SendEventPostURI, "{eventName}", ApprovalEvent, 1)
	resp := hosttest.Do(t, "POST", raise, []byte(`{"approved":true,"by":"bob"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("raise: %d %s, want 202", resp.StatusCode, resp.Body)
	}
	inst := hosttest.WaitDone(t, app, "order-42")
	if want := `{"status":"approved","by":"bob","notified":["notified alice","notified finance","notified purchasing"]}`; string(inst.Output) != want {
		t.Errorf("output %s, want %s", inst.Output, want)
	}
	if string(inst.CustomStatus) != `"approved"` {
		t.Errorf("custom status %s, want \"approved\"", inst.CustomStatus)
	}

	events := history(t, cs.StatusQueryGetURI)
	for _, c := range []struct {
		typ, name string
		n         int
	}{
		{"TaskFailed", "check_budget", 1}, // the first attempt, refused by the flaky service
		{"TimerFired", "", 1},             // the retry's wait
		{"TaskCompleted", "check_budget", 1},
		{"EventRaised", ApprovalEvent, 1},
		{"TaskCompleted", "notify", 3},
		{"ExecutionCompleted", "", 1},
	} {
		if got := count(events, c.typ, c.name); got != c.n {
			t.Errorf("%d %s %s events, want %d; history %+v", got, c.typ, c.name, c.n, events)
		}
	}
}

// TestApprovalTimesOut: without a decision, the timeout timer ends the wait, and everyone is told.
func TestApprovalTimesOut(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)
	cs := start(t, srv.URL+"/api/approvals", `{"item":"chair","amount":250,"requester":"carol","timeoutSeconds":1}`)
	if len(cs.ID) != 32 {
		t.Errorf("generated id %q, want 32 hex characters", cs.ID)
	}
	inst := hosttest.WaitDone(t, app, cs.ID)
	var out Outcome
	if err := json.Unmarshal(inst.Output, &out); err != nil || out.Status != "timed out" || len(out.Notified) != 3 {
		t.Fatalf("output %s, want timed out with 3 notifications", inst.Output)
	}
	events := history(t, cs.StatusQueryGetURI)
	if got := count(events, "TimerFired", ""); got != 2 { // the retry's wait and the timeout
		t.Errorf("%d TimerFired events, want 2: %+v", got, events)
	}
	if count(events, "EventRaised", "") != 0 {
		t.Errorf("an event in the history of a request nobody decided: %+v", events)
	}
}

// TestOverBudgetNeedsNoDecision: a request over the budget is refused without waiting.
func TestOverBudgetNeedsNoDecision(t *testing.T) {
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)
	cs := start(t, srv.URL+"/api/approvals/big", `{"item":"car","amount":30000,"requester":"dave"}`)
	inst := hosttest.WaitDone(t, app, cs.ID)
	var out Outcome
	if err := json.Unmarshal(inst.Output, &out); err != nil || out.Status != "over budget" {
		t.Fatalf("output %s, want over budget", inst.Output)
	}
}

// TestRewindAfterMailOutage: notifications that failed while the mail server was down fail the
// instance; a rewind once it is back sends them again, and the instance completes.
func TestRewindAfterMailOutage(t *testing.T) {
	t.Setenv("APPROVAL_MAIL_DOWN", "1")
	app := newApp(hosttest.Options(t)...)
	srv := hosttest.Serve(t, app)
	cs := start(t, srv.URL+"/api/approvals/order-44", `{"item":"desk","amount":600,"requester":"erin","timeoutSeconds":1}`)
	inst := hosttest.WaitDone(t, app, cs.ID)
	if inst.Status != reprise.StatusFailed || inst.Failure == nil || !strings.Contains(inst.Failure.Message, "MailServerDown") {
		t.Fatalf("status %s, failure %+v; want Failed by MailServerDown", inst.Status, inst.Failure)
	}
	t.Setenv("APPROVAL_MAIL_DOWN", "")
	rewind := strings.Replace(cs.StatusQueryGetURI, "?", "/rewind?reason=mail+is+back&", 1)
	if resp := hosttest.Do(t, "POST", rewind, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("rewind: %d %s, want 202", resp.StatusCode, resp.Body)
	}
	// The rewind is carried out in the instance's next episode; until then it still shows Failed.
	// The Client has no wait for a history event, so this polls the history.
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		h, err := app.Client().GetInstance(ctx, cs.ID, reprise.WithHistory())
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(h.History, func(e reprise.HistoryEvent) bool { return e.Type == "ExecutionRewound" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rewind was never carried out")
		}
	}
	inst = hosttest.WaitDone(t, app, cs.ID)
	if want := `{"status":"timed out","notified":["notified erin","notified finance","notified purchasing"]}`; inst.Status != reprise.StatusCompleted || string(inst.Output) != want {
		t.Errorf("after the rewind: %s %s, want Completed %s", inst.Status, inst.Output, want)
	}
}

func TestBadRequests(t *testing.T) {
	srv := hosttest.Serve(t, newApp(hosttest.Options(t)...))
	for _, c := range []struct{ path, body, want string }{
		{"/api/approvals/x", `not json`, "must be a purchase request"},
		{"/api/approvals/x", `{"item":"laptop"}`, "needs an item, a requester and a positive amount"},
		{"/api/approvals/@x", `{"item":"laptop","amount":1,"requester":"a"}`, "invalid instance ID"},
	} {
		resp := hosttest.Do(t, "POST", srv.URL+c.path, []byte(c.body))
		var e struct{ Error string }
		resp.JSON(t, &e)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, c.want) {
			t.Errorf("POST %s %s: %d %s, want 400 with %q", c.path, c.body, resp.StatusCode, resp.Body, c.want)
		}
	}
	if resp := hosttest.Do(t, "GET", srv.URL+"/api/approvals/x", nil); resp.StatusCode != http.StatusMethodNotAllowed ||
		!slices.Contains(strings.Split(resp.Header.Get("Allow"), ", "), "POST") {
		t.Errorf("GET: %d, Allow %q; want 405 allowing POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
