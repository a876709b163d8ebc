package reprise_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
)

var echoOrch = reprise.NewOrchestrator("echo", func(ctx *reprise.OrchestrationContext, in json.RawMessage) (json.RawMessage, error) {
	return in, nil
})

// hostileIDs are instance IDs no entry point may take. The first used to be started (202) and
// then claimed for ever on SQLite (one core spinning, the file growing) and answered with 500 on
// PostgreSQL; "." and ".." were started, but their URLs lead elsewhere.
var hostileIDs = []struct{ name, id string }{
	{"not UTF-8", "x-\xff"},
	{"truncated UTF-8", "x-\xe2\x82"},
	{"NUL", "x\x00y"},
	{"dot", "."},
	{"dot dot", ".."},
	{"huge", strings.Repeat("i", 257)},
}

// TestHostileInstanceIDs starts the real engine on each hostile ID. Before the fix the start
// succeeded; the wait below is bounded, so the loop shows as a failure, never as a hang.
func TestHostileInstanceIDs(t *testing.T) {
	app := startApp(t, []reprise.Definition{echoOrch})
	c := app.Client()
	ctx := testCtx(t)
	for _, tc := range hostileIDs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := echoOrch.Start(ctx, c, json.RawMessage(`1`), reprise.WithInstanceID(tc.id))
			if err == nil {
				wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_, werr := c.WaitForCompletion(wctx, tc.id)
				t.Fatalf("StartNew(%q) accepted the ID; waiting 5s for it to complete: %v", tc.id, werr)
			}
			if !errors.Is(err, reprise.ErrInvalidInstanceID) {
				t.Fatalf("StartNew(%q) = %v, want ErrInvalidInstanceID", tc.id, err)
			}
		})
	}
	// The engine is not busy with anything: a good instance completes.
	id, err := echoOrch.Start(ctx, c, json.RawMessage(`"ok"`))
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); string(inst.Output) != `"ok"` {
		t.Fatalf("output %s", inst.Output)
	}
	// Lookups refuse text a store cannot hold, with the same error.
	for _, bad := range []string{"x-\xff", "x\x00y", strings.Repeat("i", store.MaxKeyBytes+1)} {
		calls := map[string]error{
			"GetInstance": func() error { _, err := c.GetInstance(ctx, bad); return err }(),
			"RaiseEvent":  c.RaiseEvent(ctx, bad, "e", 1),
			"Terminate":   c.Terminate(ctx, bad, "r"),
			"Suspend":     c.Suspend(ctx, bad, "r"),
			"Resume":      c.Resume(ctx, bad, "r"),
			"Rewind":      c.Rewind(ctx, bad, "r"),
			"Restart":     func() error { _, err := c.Restart(ctx, bad, true); return err }(),
			"Purge":       c.PurgeInstance(ctx, bad),
		}
		for name, err := range calls {
			if !errors.Is(err, reprise.ErrInvalidInstanceID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidInstanceID", name, bad, err)
			}
		}
	}
}

// TestHostileClientArguments covers the other text, payloads and dates the Client takes: each is
// ErrInvalidArgument, and nothing is started, changed or purged.
func TestHostileClientArguments(t *testing.T) {
	waiter := reprise.NewOrchestrator("waiter", func(ctx *reprise.OrchestrationContext, _ any) (int, error) {
		return reprise.WaitForEvent[int](ctx, "go", 0).Await()
	})
	app := startApp(t, []reprise.Definition{echoOrch, waiter})
	c := app.Client()
	ctx := testCtx(t)
	done, err := echoOrch.Start(ctx, c, json.RawMessage(`1`), reprise.WithInstanceID("done"))
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, done)
	live, err := waiter.Start(ctx, c, nil, reprise.WithInstanceID("live"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, live); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", store.MaxKeyBytes+1)
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		call func() error
	}{
		{"start, name not UTF-8", func() error { _, err := c.StartNew(ctx, "echo\xff", 1); return err }},
		{"start, huge name", func() error { _, err := c.StartNew(ctx, long, 1); return err }},
		{"start, input not UTF-8", func() error { _, err := c.StartNew(ctx, "echo", json.RawMessage("\"\xff\"")); return err }},
		{"raise, name not UTF-8", func() error { return c.RaiseEvent(ctx, live, "go\xff", 1) }},
		{"raise, name with NUL", func() error { return c.RaiseEvent(ctx, live, "go\x00", 1) }},
		{"raise, huge name", func() error { return c.RaiseEvent(ctx, live, long, 1) }},
		{"raise, data not UTF-8", func() error { return c.RaiseEvent(ctx, live, "go", json.RawMessage("\"\xc3\"")) }},
		{"terminate, reason not UTF-8", func() error { return c.Terminate(ctx, live, "why\xff") }},
		{"suspend, reason with NUL", func() error { return c.Suspend(ctx, live, "a\x00b") }},
		{"resume, huge reason", func() error { return c.Resume(ctx, live, strings.Repeat("r", 64<<10+1)) }},
		{"rewind, reason not UTF-8", func() error { return c.Rewind(ctx, done, "\xff") }},
		{"list, prefix not UTF-8", func() error { _, _, err := c.ListInstances(ctx, reprise.Query{IDPrefix: "d\xff"}); return err }},
		{"list, name with NUL", func() error { _, _, err := c.ListInstances(ctx, reprise.Query{Name: "echo\x00"}); return err }},
		{"list, from 9999", func() error { _, _, err := c.ListInstances(ctx, reprise.Query{CreatedFrom: far}); return err }},
		{"count, to 9999", func() error { _, err := c.CountInstances(ctx, reprise.Query{CreatedTo: far}); return err }},
		{"purge, from 9999", func() error { _, err := c.PurgeInstances(ctx, reprise.PurgeFilter{CreatedFrom: far}); return err }},
		{"purge, just before the range", func() error {
			_, err := c.PurgeInstances(ctx, reprise.PurgeFilter{CreatedFrom: store.MinTime().Add(-time.Nanosecond)})
			return err
		}},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, reprise.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if _, _, err := c.ListInstances(ctx, reprise.Query{ContinuationToken: "\xff"}); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("list, token not UTF-8: %v, want store.ErrInvalidToken", err)
	}
	counts, err := c.CountInstances(ctx, reprise.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if counts[reprise.StatusCompleted] != 1 || counts[reprise.StatusRunning] != 1 || len(counts) != 2 {
		t.Fatalf("after the refused calls: %v, want the two instances as they were", counts)
	}
	// The edges of the range are bounds like any other.
	if n, err := c.PurgeInstances(ctx, reprise.PurgeFilter{CreatedFrom: store.MinTime(), CreatedTo: store.MaxTime()}); err != nil || n != 1 {
		t.Fatalf("PurgeInstances(the whole range) = %d, %v; want 1", n, err)
	}
}

// TestHostileHTTP sends hostile requests to the management API of a real host, on both stores
// (PostgreSQL answered the non-UTF-8 ID with 500): each is a 400 with a message, and nothing is
// started or purged.
func TestHostileHTTP(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testHostileHTTP(t) })
	t.Run("postgres", func(t *testing.T) { testHostileHTTP(t, reprise.WithPostgres(pgtest.DSN(t))) })
}

func testHostileHTTP(t *testing.T, opts ...reprise.Option) {
	app := startApp(t, []reprise.Definition{echoOrch}, append(opts, reprise.WithAnonymousManagement())...)
	c := app.Client()
	ctx := testCtx(t)
	done, err := echoOrch.Start(ctx, c, json.RawMessage(`1`), reprise.WithInstanceID("done"))
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, done)
	const base = "/runtime/webhooks/durabletask"
	long := strings.Repeat("i", 257)
	cases := []struct {
		method, target, body string
		want                 string
	}{
		{"POST", base + "/orchestrators/echo/x-%FF", "", "not valid UTF-8"},
		{"POST", base + "/orchestrators/echo/x%00y", "", "NUL"},
		{"POST", base + "/orchestrators/echo/" + long, "", "the limit is 256"},
		{"POST", base + "/orchestrators/echo/a%2Fb", "", "must not contain '/'"},
		{"POST", base + "/orchestrators/ec%FFho", "", "not valid UTF-8"},
		{"POST", base + "/orchestrators/echo", "\"\xff\"", "not valid UTF-8"},
		{"POST", base + "/orchestrators/echo/ok", "[\"\xed\xa0\x80\"]", "not valid UTF-8"}, // a UTF-16 surrogate
		{"GET", base + "/instances/done%FF", "", "not valid UTF-8"},
		{"POST", base + "/instances/done/terminate?reason=%FF", "", "'reason'"},
		{"GET", base + "/instances?instanceIdPrefix=d%00", "", "NUL"},
		{"GET", base + "/instances?createdTimeFrom=9999-01-01", "", "want a date from 1678-01-01 to 2261-12-31"},
		{"GET", base + "/instances?createdTimeFrom=0001-01-01&createdTimeTo=0001-01-01", "", "want a date from"},
		{"DELETE", base + "/instances?createdTimeFrom=9999-01-01", "", "want a date from"},
		{"DELETE", base + "/instances?createdTimeFrom=0001-01-01&createdTimeTo=0001-01-01", "", "want a date from"},
		// Entities: names, keys, operation names, inputs, dates.
		{"GET", base + "/entities/counter/x%FF", "", "not valid UTF-8"},
		{"POST", base + "/entities/counter/x%00?op=add", "", "NUL"},
		{"POST", base + "/entities/counter/" + strings.Repeat("k", 2049) + "?op=add", "", "the limit is 2048"},
		{"POST", base + "/entities/counter/a%2Fb?op=add", "", "must not contain '/'"},
		{"DELETE", base + "/entities/counter/a%01b", "", "control characters"},
		{"POST", base + "/entities/co@unter/x?op=add", "", "'@'"},
		{"POST", base + "/entities/counter/x?op=%FF", "", "not valid UTF-8"},
		{"POST", base + "/entities/counter/x?op=add", "a\xffb", "not valid UTF-8"},
		{"GET", base + "/entities?lastOperationTimeFrom=9999-01-01", "", "want a date from"},
		{"GET", base + "/entities/counter?lastOperationTimeTo=0001-01-01", "", "want a date from"},
		{"GET", base + "/entities?top=100000", "", "'top'"},
		{"POST", base + "/entities/$clean?removeEmptyEntities=maybe", "", "want true or false"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		r.Host = "localhost" // the anonymous management API answers loopback names only
		w := httptest.NewRecorder()
		app.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s; want 400 with %q", tc.method, tc.target, w.Code, w.Body, tc.want)
		}
	}
	// Forged continuation tokens of an entity listing, as a client could send them.
	for _, token := range []string{"forged", "bnVsbA==", "\xff", strings.Repeat("t", 9000)} {
		r := httptest.NewRequest("GET", base+"/entities/counter?fetchState=true", nil)
		r.Host = "localhost"
		r.Header.Set("x-ms-continuation-token", token)
		w := httptest.NewRecorder()
		app.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET entities with token %.40q: %d %s; want 400", token, w.Code, w.Body)
		}
	}
	ents, _, err := c.QueryEntities(ctx, reprise.EntityQuery{IncludeTransient: true})
	if err != nil || len(ents) != 0 {
		t.Fatalf("entities after the hostile requests: %d (%v), want none", len(ents), err)
	}
	all, _, err := c.ListInstances(ctx, reprise.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != "done" {
		t.Fatalf("instances after the hostile requests: %d, want only %q", len(all), done)
	}
}

// TestManagementUnauthorizedMessage checks that a 401 of the management API says how to pass the
// key, as docs/http-api.md promises (the body used to be empty).
func TestManagementUnauthorizedMessage(t *testing.T) {
	app := startApp(t, []reprise.Definition{echoOrch}, reprise.WithKeys(reprise.Keys{System: "system-key"}))
	w := httptest.NewRecorder()
	app.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/runtime/webhooks/durabletask/instances", nil))
	var body struct{ Message string }
	if w.Code != http.StatusUnauthorized || json.Unmarshal(w.Body.Bytes(), &body) != nil || !strings.Contains(body.Message, "code query parameter") {
		t.Fatalf("401 answer: %d %q, want a JSON message saying how to pass the key", w.Code, w.Body)
	}
}

// TestHostileOrchestratorCalls checks the text an orchestrator hands the engine: each call with a
// name, ID or payload a store would refuse fails at once, in the orchestrator, instead of
// producing a commit that is refused (and retried) for ever.
func TestHostileOrchestratorCalls(t *testing.T) {
	hostile := reprise.NewOrchestrator("hostile", func(ctx *reprise.OrchestrationContext, _ any) ([]string, error) {
		var out []string
		note := func(what string, err error) {
			if errors.Is(err, reprise.ErrInvalidArgument) || errors.Is(err, reprise.ErrInvalidInstanceID) {
				out = append(out, what)
			}
		}
		_, err := reprise.CallActivity[int](ctx, "act\xff", 1).Await()
		note("activity name", err)
		_, err = reprise.CallActivity[int](ctx, "act", json.RawMessage("\"\xff\"")).Await()
		note("activity input", err)
		_, err = reprise.CallSubOrchestrator[int](ctx, "echo\x00", 1).Await()
		note("sub-orchestrator name", err)
		_, err = reprise.CallSubOrchestrator[int](ctx, "echo", 1, reprise.WithInstanceID("sub-\xff")).Await()
		note("sub-orchestration ID", err)
		note("event target", ctx.SendEvent("x-\xff", "e", 1))
		note("event name", ctx.SendEvent("other", "e\xff", 1))
		note("event data", ctx.SendEvent("other", "e", json.RawMessage("\"\xff\"")))
		return out, nil
	})
	app := startApp(t, []reprise.Definition{echoOrch, hostile})
	id, err := hostile.Start(testCtx(t), app.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	inst := waitDone(t, app.Client(), id)
	want := []string{"activity name", "activity input", "sub-orchestrator name", "sub-orchestration ID", "event target", "event name", "event data"}
	if got := output[[]string](t, inst); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("refused calls: %q, want %q (status %s, output %s)", got, want, inst.Status, inst.Output)
	}
}

// TestOutOfRangeTimes: times the stores cannot keep (SQLite's nanoseconds overflow after 2262,
// so such a timer fired at once) are refused where they are made: a scheduled start by the
// Client, a timer or an event timeout by the orchestrator's call, which fails at once.
func TestOutOfRangeTimes(t *testing.T) {
	far := 250 * 365 * 24 * time.Hour
	timers := reprise.NewOrchestrator("far_timers", func(ctx *reprise.OrchestrationContext, _ any) ([]string, error) {
		var out []string
		note := func(what string, err error) {
			if errors.Is(err, reprise.ErrInvalidArgument) {
				out = append(out, what)
			}
		}
		_, err := ctx.CreateTimer(far).Await()
		note("timer", err)
		_, err = ctx.CreateTimerAt(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)).Await()
		note("timer at", err)
		_, err = reprise.WaitForEvent[int](ctx, "e", far).Await()
		note("event timeout", err)
		return out, nil
	})
	app := startApp(t, []reprise.Definition{echoOrch, timers})
	c := app.Client()
	if _, err := echoOrch.Start(testCtx(t), c, json.RawMessage(`1`), reprise.WithStartTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))); !errors.Is(err, reprise.ErrInvalidArgument) {
		t.Fatalf("start in the year 3000: %v, want ErrInvalidArgument", err)
	}
	id, err := timers.Start(testCtx(t), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	inst := waitDone(t, c, id)
	want := []string{"timer", "timer at", "event timeout"}
	if got := output[[]string](t, inst); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("refused: %q, want %q (status %s, output %s)", got, want, inst.Status, inst.Output)
	}
}
