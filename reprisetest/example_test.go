package reprisetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

// The definitions of the examples: a reminder that waits for a confirmation for two days, and
// the activity that sends it.
var (
	sendReminder = reprise.NewActivity("send_reminder", func(_ context.Context, to string) (string, error) {
		return "", errors.New("sends real mail: mocked in the examples")
	})
	reminder = reprise.NewOrchestrator("reminder", func(ctx *reprise.OrchestrationContext, to string) (string, error) {
		for attempt := 1; attempt <= 3; attempt++ {
			if _, err := sendReminder.Call(ctx, to).Await(); err != nil {
				return "", err
			}
			_, err := reprise.WaitForEvent[reprise.None](ctx, "confirmed", 48*time.Hour).Await()
			if err == nil {
				return fmt.Sprintf("confirmed after %d reminder(s), at %s", attempt, ctx.Now().Format(time.RFC3339)), nil
			}
			if !errors.Is(err, reprise.ErrTimeout) {
				return "", err
			}
		}
		return "gave up at " + ctx.Now().Format(time.RFC3339), nil
	})
)

// A test runs an orchestrator to its end with one call: the harness moves its virtual clock
// over the three waits of two days each in milliseconds.
func Example() {
	t := exampleT() // in a test function: its *testing.T
	defer t.done()

	h := reprisetest.New(t, sendReminder, reminder)
	mail := reprisetest.MockActivity(h, sendReminder).Returns("sent")
	r := h.Run(reminder, "ada@example.com")
	r.RequireStatus(reprise.StatusCompleted)
	fmt.Println(reprisetest.Output[string](r))
	fmt.Println(mail.Count(), "reminders sent to", mail.Calls()[0])
	// Output:
	// gave up at 2030-01-07T00:00:00Z
	// 3 reminders sent to ada@example.com
}

// Callbacks at virtual times play the outside world: here the confirmation arrives 3 days in,
// after the second reminder.
func ExampleHarness_After() {
	t := exampleT()
	defer t.done()

	h := reprisetest.New(t, sendReminder, reminder)
	reprisetest.MockActivity(h, sendReminder).Returns("sent")
	id := h.Start(reminder, "ada@example.com")
	h.After(72*time.Hour, func(ctx context.Context, c *reprise.Client) {
		if err := c.RaiseEvent(ctx, id, "confirmed", nil); err != nil {
			t.Fatal(err)
		}
	})
	fmt.Println(reprisetest.Output[string](h.Wait(id)[0]))
	// Output:
	// confirmed after 2 reminder(s), at 2030-01-04T00:00:00Z
}

// The clock can be moved by hand, to look at an instance in between.
func ExampleHarness_Advance() {
	t := exampleT()
	defer t.done()

	h := reprisetest.New(t, sendReminder, reminder)
	mail := reprisetest.MockActivity(h, sendReminder).Returns("sent")
	id := h.Start(reminder, "ada@example.com")
	h.Advance(50 * time.Hour)
	fmt.Println(h.Result(id).Status, "after", h.Now().Sub(reprisetest.DefaultStart()), "with", mail.Count(), "reminders sent")
	// Output:
	// Running after 50h0m0s with 2 reminders sent
}

// A failing mock, and the history dump that the assertion helpers log when they fail.
func ExampleResult_Dump() {
	t := exampleT()
	defer t.done()

	h := reprisetest.New(t, sendReminder, reminder)
	reprisetest.MockActivity(h, sendReminder).Fails(&reprise.Error{Type: "SMTP", Message: "mailbox full", NonRetriable: true})
	r := h.Run(reminder, "ada@example.com", reprise.WithInstanceID("reminder-1"))
	fmt.Print(r.Dump())
	// Output:
	// instance reminder-1 (reminder): Failed
	//   input:         "ada@example.com"
	//   output:        "activity \"send_reminder\" (task 0) failed: SMTP: mailbox full"
	//   failure:       TaskFailed: activity "send_reminder" (task 0) failed: SMTP: mailbox full
	//   history (6 events):
	//     +0s  OrchestratorStarted
	//     +0s  ExecutionStarted     reminder input "ada@example.com"
	//     +0s  TaskScheduled        #0 send_reminder input "ada@example.com"
	//     +0s  OrchestratorStarted
	//     +0s  TaskFailed           of #0 failure mailbox full
	//     +0s  ExecutionCompleted   Failed failure activity "send_reminder" (task 0) failed: SMTP: mailbox full
}

// exampleT is the testing.TB of the examples, which have none: it keeps what the harness
// registers for cleanup and runs it in done. Tests pass their *testing.T instead.
func exampleT() *exampleTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &exampleTB{ctx: ctx, cancel: cancel}
}

type exampleTB struct {
	testing.TB // nil: the harness uses only the methods below
	ctx        context.Context
	cancel     context.CancelFunc
	cleanups   []func()
}

func (e *exampleTB) Helper()                           {}
func (e *exampleTB) Context() context.Context          { return e.ctx }
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) Log(args ...any)                   { fmt.Fprintln(os.Stderr, args...) }
func (e *exampleTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }

func (e *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "reprisetest-example")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (e *exampleTB) done() {
	e.cancel()
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}
