// Command approval is a function app with an approval workflow, the example the docs' sessions
// use. POST /api/approvals/{id} starts the orchestrator approval_workflow for a purchase request:
//
//  1. the activity check_budget asks a budget service, which fails the first call of every
//     request (a transient fault, simulated), so the call is retried after a durable timer;
//  2. the orchestration waits for the external event "Approval" ({"approved": true, "by":
//     "bob"}), with a timeout timer (timeoutSeconds in the request, default an hour);
//  3. it fans out one notify activity per recipient, in parallel, and fans in their receipts
//     (APPROVAL_MAIL_DOWN=1 makes them fail, to try rewind).
//
// It runs on the embedded SQLite store (reprise.db in the working directory) and listens on
// 127.0.0.1:7071, with an anonymous management API, as under the Functions Core Tools.
//
//	go run ./examples/approval
//	curl -i -X POST http://127.0.0.1:7071/api/approvals/order-42 -d '{"item":"laptop","amount":1800,"requester":"alice"}'
//	reprise instances raise order-42 Approval '{"approved":true,"by":"bob"}'
//
// See README.md next to this file for a whole session.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reprise-dev/reprise"
)

// Request is a purchase request, the orchestration's input.
type Request struct {
	Item      string `json:"item"`
	Amount    int    `json:"amount"` // euros
	Requester string `json:"requester"`
	// TimeoutSeconds is how long to wait for a decision; 0 means an hour.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// Decision is the data of the "Approval" event.
type Decision struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// Outcome is the orchestration's output.
type Outcome struct {
	Status   string   `json:"status"` // approved, rejected, over budget or timed out
	By       string   `json:"by,omitempty"`
	Notified []string `json:"notified"`
}

// Budget is what check_budget answers.
type Budget struct {
	Left int `json:"left"`
}

// budgetLeft is the budget the simulated service knows.
const budgetLeft = 5000

// CheckBudget asks the budget service how much is left. The service is flaky on purpose: it fails
// the first attempt of every call, so the retry policy below has something to do.
var CheckBudget = reprise.NewActivity("check_budget", func(ctx context.Context, req Request) (Budget, error) {
	if info, _ := reprise.ActivityInfoFrom(ctx); info.Attempt == 1 {
		return Budget{}, &reprise.Error{Type: "BudgetServiceUnavailable", Message: "the budget service did not answer"}
	}
	return Budget{Left: budgetLeft}, nil
})

// Notice is one notification.
type Notice struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// Notify sends a notification (here: it only returns a receipt). With APPROVAL_MAIL_DOWN=1 in the
// environment the mail server is down: notifications fail, so does the orchestration, and once
// the app runs without the variable, `reprise instances rewind` sends the failed ones again.
var Notify = reprise.NewActivity("notify", func(ctx context.Context, n Notice) (string, error) {
	if os.Getenv("APPROVAL_MAIL_DOWN") == "1" {
		return "", &reprise.Error{Type: "MailServerDown", Message: "the mail server refused the connection"}
	}
	return "notified " + n.To, nil
})

// budgetRetry: three attempts, one second apart; the waits are durable timers.
var budgetRetry = reprise.RetryPolicy{FirstInterval: time.Second, MaxAttempts: 3}

// ApprovalEvent is the name of the external event that carries the decision.
const ApprovalEvent = "Approval"

// ApprovalWorkflow is the orchestrator.
var ApprovalWorkflow = reprise.NewOrchestrator("approval_workflow",
	func(ctx *reprise.OrchestrationContext, req Request) (Outcome, error) {
		budget, err := CheckBudget.Call(ctx, req, reprise.WithRetry(budgetRetry)).Await()
		if err != nil {
			return Outcome{}, err
		}
		var out Outcome
		if req.Amount > budget.Left {
			out = Outcome{Status: "over budget", By: "check_budget"}
		} else {
			timeout := time.Duration(req.TimeoutSeconds) * time.Second
			if timeout <= 0 {
				timeout = time.Hour
			}
			if err := ctx.SetCustomStatus("waiting for approval"); err != nil {
				return Outcome{}, err
			}
			d, err := reprise.WaitForEvent[Decision](ctx, ApprovalEvent, timeout).Await()
			switch {
			case errors.Is(err, reprise.ErrTimeout):
				out = Outcome{Status: "timed out"}
			case err != nil:
				return Outcome{}, err
			case d.Approved:
				out = Outcome{Status: "approved", By: d.By}
			default:
				out = Outcome{Status: "rejected", By: d.By}
			}
		}
		if err := ctx.SetCustomStatus("notifying"); err != nil {
			return Outcome{}, err
		}
		// Fan out: one notification per recipient, all at once; fan in: wait for every receipt.
		text := fmt.Sprintf("%s (%d EUR) for %s: %s", req.Item, req.Amount, req.Requester, out.Status)
		var sends []*reprise.Task[string]
		for _, to := range []string{req.Requester, "finance", "purchasing"} {
			sends = append(sends, Notify.Call(ctx, Notice{To: to, Text: text}))
		}
		if out.Notified, err = reprise.All(ctx, sends...).Await(); err != nil {
			return Outcome{}, err
		}
		return out, ctx.SetCustomStatus(out.Status)
	})

// newApp builds the function app. The management API is anonymous, as under the Functions Core
// Tools on a developer's machine; set REPRISE_MANAGEMENT_AUTH=system (and REPRISE_SYSTEM_KEY) to
// require the system key.
func newApp(opts ...reprise.Option) *reprise.App {
	app := reprise.NewApp(append([]reprise.Option{reprise.WithAnonymousManagement()}, opts...)...)
	app.Register(CheckBudget, Notify, ApprovalWorkflow)
	start := func(w http.ResponseWriter, r *http.Request) {
		req, err := readRequest(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		var startOpts []reprise.StartOption
		if id := r.PathValue("id"); id != "" {
			startOpts = append(startOpts, reprise.WithInstanceID(id))
		}
		id, err := ApprovalWorkflow.Start(r.Context(), app.Client(), req, startOpts...)
		switch {
		case errors.Is(err, reprise.ErrInstanceExists):
			writeError(w, http.StatusConflict, err.Error())
			return
		case errors.Is(err, reprise.ErrInvalidInstanceID):
			writeError(w, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, "could not start approval_workflow: "+err.Error())
			return
		}
		app.Client().WriteCheckStatusResponse(w, r, id)
	}
	app.HandleFunc("POST /api/approvals", start, reprise.AuthAnonymous)
	app.HandleFunc("POST /api/approvals/{id}", start, reprise.AuthAnonymous)
	return app
}

// readRequest reads and checks the purchase request in the body.
func readRequest(r *http.Request) (Request, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return Request{}, errors.New("could not read the request body: " + err.Error())
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return Request{}, errors.New(`the body must be a purchase request such as {"item":"laptop","amount":1800,"requester":"alice"}: ` + err.Error())
	}
	if req.Item == "" || req.Requester == "" || req.Amount <= 0 || req.TimeoutSeconds < 0 {
		return Request{}, errors.New("a purchase request needs an item, a requester and a positive amount (and timeoutSeconds, if given, 0 or more)")
	}
	return req, nil
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
