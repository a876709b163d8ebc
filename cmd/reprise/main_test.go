package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// The definitions the test host runs.
var (
	sayHello = reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		return "Hello " + city + "!", nil
	})
	helloSequence = reprise.NewOrchestrator("hello_sequence", func(ctx *reprise.OrchestrationContext, cities []string) ([]string, error) {
		var out []string
		for _, city := range cities {
			greeting, err := sayHello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, greeting)
		}
		return out, nil
	})
	approval = reprise.NewOrchestrator("approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		ctx.SetCustomStatus("waiting for approval")
		approver, err := reprise.WaitForEvent[string](ctx, "Approved", 0).Await()
		if err != nil {
			return "", err
		}
		return "approved by " + approver, nil
	})
	forever = reprise.NewOrchestrator("forever", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		_, err := ctx.CreateTimer(365 * 24 * time.Hour).Await()
		return reprise.None{}, err
	})
	failing = reprise.NewOrchestrator("failing", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		return reprise.None{}, errors.New("out of coffee")
	})
)

const systemKey = "syskey"

// testHost is a real Reprise App served over HTTP, as the CLI meets it in production.
type testHost struct {
	app *reprise.App
	url string
}

func startHost(t *testing.T) *testHost {
	t.Helper()
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{System: systemKey}))...)
	app.Register(sayHello, helloSequence, approval, forever, failing)
	srv := hosttest.Serve(t, app)
	return &testHost{app: app, url: srv.URL}
}

// result is what one CLI run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the CLI against the host with the key in the environment, as a user would set it up.
func (h *testHost) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t, map[string]string{"REPRISE_URL": h.url, "REPRISE_KEY": systemKey}, args...)
}

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(testCtx(t), args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustSucceed runs the CLI and fails the test unless it exits 0.
func (h *testHost) mustSucceed(t *testing.T, args ...string) string {
	t.Helper()
	r := h.cli(t, args...)
	if r.code != 0 {
		t.Fatalf("reprise %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantExit runs the CLI and checks its exit code and that stderr contains each of msgs.
func (h *testHost) wantExit(t *testing.T, code int, msgs []string, args ...string) result {
	t.Helper()
	r := h.cli(t, args...)
	checkExit(t, r, code, msgs, args)
	return r
}

func checkExit(t *testing.T, r result, code int, msgs []string, args []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("reprise %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("reprise %s: stderr lacks %q:\n%s", strings.Join(args, " "), m, r.stderr)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *testHost) waitDone(t *testing.T, id string) *reprise.Instance {
	t.Helper()
	inst, err := h.app.Client().WaitForCompletion(testCtx(t), id)
	if err != nil {
		t.Fatalf("wait for %s: %v", id, err)
	}
	return inst
}

// waitStatus waits until the instance reaches the status. Suspend and resume are carried out by
// the engine after the host accepted them, and the client has no wait for them, so this polls.
func (h *testHost) waitStatus(t *testing.T, id string, want reprise.RuntimeStatus) {
	t.Helper()
	ctx := testCtx(t)
	for {
		inst, err := h.app.Client().GetInstance(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if inst.Status == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("instance %s is %s, never became %s", id, inst.Status, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startSequence starts hello_sequence through the app's client and waits for it to complete.
func (h *testHost) startSequence(t *testing.T, id string) {
	t.Helper()
	_, err := helloSequence.Start(testCtx(t), h.app.Client(), []string{"Tokyo", "Seattle", "London"}, reprise.WithInstanceID(id))
	if err != nil {
		t.Fatal(err)
	}
	h.waitDone(t, id)
}

// startForever starts an instance that waits on a year-long timer, and waits until it runs.
func (h *testHost) startForever(t *testing.T, id string) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := forever.Start(ctx, h.app.Client(), reprise.None{}, reprise.WithInstanceID(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.Client().WaitForStart(ctx, id); err != nil {
		t.Fatal(err)
	}
}

const cities = `["Tokyo","Seattle","London"]`

func TestStartNew(t *testing.T) {
	t.Parallel()
	h := startHost(t)

	t.Run("wait prints the output", func(t *testing.T) {
		out := h.mustSucceed(t, "start-new", "hello_sequence", "--id", "seq-wait", "--input", cities, "--wait")
		for _, want := range []string{"seq-wait", "Completed", `"Hello Tokyo!"`, `"Hello London!"`} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("wait --json prints the host's output document", func(t *testing.T) {
		out := h.mustSucceed(t, "start-new", "hello_sequence", "--input", cities, "--wait", "--json")
		var got []string
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 3 || got[1] != "Hello Seattle!" {
			t.Fatalf("want the orchestrator's output as JSON, got %q (%v)", out, err)
		}
	})

	t.Run("without wait prints the ID", func(t *testing.T) {
		out := h.mustSucceed(t, "start-new", "hello_sequence", "--id", "seq-nowait", "--input", cities)
		if strings.TrimSpace(out) != "started hello_sequence as seq-nowait" {
			t.Errorf("got %q", out)
		}
		inst := h.waitDone(t, "seq-nowait")
		if inst.Status != reprise.StatusCompleted || !strings.Contains(string(inst.Input), "Seattle") {
			t.Errorf("instance %s with input %s, want Completed with the cities", inst.Status, inst.Input)
		}
	})

	t.Run("input file and --json check-status payload", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "input.json")
		if err := os.WriteFile(file, []byte(`["Paris"]`), 0o600); err != nil {
			t.Fatal(err)
		}
		out := h.mustSucceed(t, "--json", "start-new", "hello_sequence", "--input-file", file)
		var payload struct{ ID, StatusQueryGetURI string }
		if err := json.Unmarshal([]byte(out), &payload); err != nil || payload.ID == "" {
			t.Fatalf("want the check-status payload, got %q (%v)", out, err)
		}
		if inst := h.waitDone(t, payload.ID); string(inst.Output) != `["Hello Paris!"]` {
			t.Errorf("output %s", inst.Output)
		}
	})

	t.Run("wait on a failing instance exits 6", func(t *testing.T) {
		r := h.wantExit(t, exitEndedBadly, []string{"ended Failed"}, "start-new", "failing", "--wait")
		if !strings.Contains(r.stdout, "out of coffee") {
			t.Errorf("stdout lacks the failure:\n%s", r.stdout)
		}
	})

	t.Run("wait that runs out exits 7", func(t *testing.T) {
		h.wantExit(t, exitStillActive, []string{"wait-out", "still Running", "reprise instances show wait-out"},
			"start-new", "forever", "--id", "wait-out", "--wait", "--timeout", "300ms")
	})

	t.Run("an active ID exits 4", func(t *testing.T) {
		h.startForever(t, "taken")
		h.wantExit(t, exitState, []string{"already"}, "start-new", "forever", "--id", "taken")
	})

	t.Run("unknown orchestrator exits 1 with the host's message", func(t *testing.T) {
		h.wantExit(t, exitHostError, []string{"cannot start no_such_orchestrator (400 Bad Request)", "doesn't exist"}, "start-new", "no_such_orchestrator")
	})

	t.Run("invalid JSON input exits 2", func(t *testing.T) {
		r := h.wantExit(t, exitUsage, []string{"not valid JSON", "Usage: reprise start-new"}, "start-new", "hello_sequence", "--input", "{bad")
		if r.stdout != "" {
			t.Errorf("stdout should be empty, got %q", r.stdout)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	ids := []string{"list-a", "list-b", "list-c"}
	for _, id := range ids {
		h.startSequence(t, id)
	}
	h.startForever(t, "other-running")

	t.Run("table", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "list")
		if !strings.HasPrefix(out, "INSTANCE ID") || !strings.Contains(strings.SplitN(out, "\n", 2)[0], "STATUS") {
			t.Errorf("no table header:\n%s", out)
		}
		if strings.Contains(out, "VERSION") {
			t.Errorf("a VERSION column, but no instance has a version:\n%s", out)
		}
		for _, id := range append(ids, "other-running") {
			if !strings.Contains(out, id) {
				t.Errorf("table lacks %s:\n%s", id, out)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "--json", "list", "--status", "completed", "--prefix", "list-")
		var got []map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out)
		}
		if len(got) != 3 {
			t.Fatalf("want the 3 completed list- instances, got %d: %s", len(got), out)
		}
		for _, inst := range got {
			if inst["runtimeStatus"] != "Completed" || !strings.HasPrefix(inst["instanceId"].(string), "list-") {
				t.Errorf("unexpected instance %v", inst)
			}
		}
	})

	t.Run("one page hints at the next", func(t *testing.T) {
		r := h.cli(t, "instances", "list", "--top", "2")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
			t.Fatalf("want a header and 2 rows, exit 0; got exit %d:\n%s", r.code, r.stdout)
		}
		if !strings.Contains(r.stderr, "--all") || !strings.Contains(r.stderr, "--continuation") {
			t.Errorf("no continuation hint on stderr: %q", r.stderr)
		}
	})

	t.Run("--all follows the continuation token", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "list", "--top", "2", "--all", "--json")
		var got []map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not one JSON array: %v\n%s", err, out)
		}
		if len(got) != 4 {
			t.Fatalf("want all 4 instances across pages, got %d", len(got))
		}
		table := h.mustSucceed(t, "instances", "list", "--top", "2", "--all")
		for _, id := range append(ids, "other-running") {
			if !strings.Contains(table, id) {
				t.Errorf("table lacks %s:\n%s", id, table)
			}
		}
	})

	t.Run("time filters", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "list", "--created-from", "-1h", "--created-to", "+1h", "--status", "Running")
		if !strings.Contains(out, "other-running") || strings.Contains(out, "list-a") {
			t.Errorf("want only the running instance:\n%s", out)
		}
		out = h.mustSucceed(t, "instances", "list", "--created-to", "-24h")
		if strings.TrimSpace(out) != "no instances found" {
			t.Errorf("want no instances created a day ago, got:\n%s", out)
		}
	})

	t.Run("input column", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "list", "--show-input", "--prefix", "list-a")
		if !strings.Contains(out, "INPUT") || !strings.Contains(out, `["Tokyo","Seattle","London"]`) {
			t.Errorf("no input column:\n%s", out)
		}
	})
}

func TestShowAndHistory(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.startSequence(t, "seq")

	t.Run("json", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "show", "seq", "--json")
		var st struct {
			Name, InstanceID, RuntimeStatus string
			Input                           []string
			Output                          []string
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if st.InstanceID != "seq" || st.Name != "hello_sequence" || st.RuntimeStatus != "Completed" ||
			len(st.Input) != 3 || len(st.Output) != 3 || st.Output[0] != "Hello Tokyo!" {
			t.Errorf("unexpected status %+v", st)
		}
	})

	t.Run("readable block", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "show", "seq")
		for _, re := range []string{`(?m)^instanceId:\s+seq$`, `(?m)^name:\s+hello_sequence$`, `(?m)^runtimeStatus:\s+Completed$`,
			`(?m)^createdTime:\s+\d{4}-\d\d-\d\dT`, `(?m)^input:$`, `(?m)^output:$`, `(?m)^  \[$`, `"Hello Seattle!"`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("block does not match %s:\n%s", re, out)
			}
		}
		if out := h.mustSucceed(t, "instances", "show", "seq", "--no-input"); strings.Contains(out, "input:") {
			t.Errorf("--no-input still shows the input:\n%s", out)
		}
	})

	t.Run("show with history", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "show", "seq", "--history-output")
		if !strings.Contains(out, "runtimeStatus:") || !strings.Contains(out, "TaskCompleted") || !strings.Contains(out, `result="Hello London!"`) {
			t.Errorf("no history with results:\n%s", out)
		}
	})

	t.Run("history table", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "history", "seq")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !regexp.MustCompile(`^TIME\s+EVENT\s+NAME\s+DETAILS$`).MatchString(lines[0]) {
			t.Errorf("header %q", lines[0])
		}
		completed := 0
		for _, l := range lines[1:] {
			if regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z\s+TaskCompleted\s+say_hello\s+after `).MatchString(l) {
				completed++
			}
		}
		if completed != 3 {
			t.Errorf("want 3 TaskCompleted rows of say_hello, got %d:\n%s", completed, out)
		}
		if !strings.Contains(lines[1], "ExecutionStarted") || !strings.Contains(lines[len(lines)-1], "ExecutionCompleted") ||
			!strings.Contains(lines[len(lines)-1], "status=Completed") {
			t.Errorf("want ExecutionStarted first and ExecutionCompleted last:\n%s", out)
		}
		if strings.Contains(out, "result=") {
			t.Errorf("results shown without --output:\n%s", out)
		}
		if out := h.mustSucceed(t, "instances", "history", "seq", "--output"); !strings.Contains(out, `result="Hello Tokyo!"`) || !strings.Contains(out, `input="Tokyo"`) {
			t.Errorf("--output shows no payloads:\n%s", out)
		}
	})

	t.Run("history json", func(t *testing.T) {
		out := h.mustSucceed(t, "instances", "history", "seq", "--json")
		var events []map[string]any
		if err := json.Unmarshal([]byte(out), &events); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		n := 0
		for _, e := range events {
			if e["EventType"] == "TaskCompleted" {
				n++
			}
		}
		if n != 3 {
			t.Errorf("want 3 TaskCompleted events, got %d", n)
		}
	})

	t.Run("unknown instance exits 3", func(t *testing.T) {
		for _, args := range [][]string{
			{"instances", "show", "nope"},
			{"instances", "history", "nope"},
			{"instances", "terminate", "nope"},
			{"instances", "raise", "nope", "Approved"},
			{"instances", "restart", "nope"},
			{"instances", "purge", "nope"},
		} {
			h.wantExit(t, exitNotFound, []string{`instance "nope" not found`}, args...)
		}
	})
}

func TestRaise(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	ctx := testCtx(t)
	c := h.app.Client()

	id := "order 42 %25+é" // space, '%' and '+' must be escaped in the URL path
	if _, err := approval.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForStart(ctx, id); err != nil { // the first episode sets the custom status
		t.Fatal(err)
	}
	if out := h.mustSucceed(t, "instances", "show", id); !strings.Contains(out, `customStatus:    "waiting for approval"`) {
		t.Errorf("custom status not shown:\n%s", out)
	}
	h.wantExit(t, exitUsage, []string{"event data is not valid JSON"}, "instances", "raise", id, "Approved", "alice")

	out := h.mustSucceed(t, "instances", "raise", id, "Approved", `"alice"`)
	if strings.TrimSpace(out) != "raised Approved on "+id {
		t.Errorf("got %q", out)
	}
	if inst := h.waitDone(t, id); string(inst.Output) != `"approved by alice"` {
		t.Errorf("output %s, want the raised data", inst.Output)
	}
	h.wantExit(t, exitState, []string{"(410 Gone)", "has finished"}, "instances", "raise", id, "Approved", `"bob"`)

	// Data from a file, and an event name that needs escaping.
	weird := reprise.NewOrchestrator("weird_event", func(ctx *reprise.OrchestrationContext, _ reprise.None) (map[string]int, error) {
		return reprise.WaitForEvent[map[string]int](ctx, "a/b c", 0).Await()
	})
	h2 := startHostWith(t, weird) // a host of its own, since Register must come before Start
	if _, err := weird.Start(ctx, h2.app.Client(), reprise.None{}, reprise.WithInstanceID("w")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(file, []byte(`{"n": 7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	h2.mustSucceed(t, "instances", "raise", "w", "a/b c", "--data-file", file)
	if inst := h2.waitDone(t, "w"); string(inst.Output) != `{"n":7}` {
		t.Errorf("output %s", inst.Output)
	}
}

// startHostWith is startHost with extra definitions.
func startHostWith(t *testing.T, defs ...reprise.Definition) *testHost {
	t.Helper()
	app := reprise.NewApp(
		reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "t2.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithKeys(reprise.Keys{System: systemKey}),
	)
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = app.Shutdown(ctx)
	})
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(srv.Close)
	return &testHost{app: app, url: srv.URL}
}

func TestTerminateSuspendResume(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.startForever(t, "f1")

	out := h.mustSucceed(t, "instances", "suspend", "f1", "--reason", "maintenance")
	if strings.TrimSpace(out) != "suspended f1 (reason: maintenance)" {
		t.Errorf("got %q", out)
	}
	h.waitStatus(t, "f1", reprise.StatusSuspended)
	if out := h.mustSucceed(t, "instances", "show", "f1"); !regexp.MustCompile(`(?m)^runtimeStatus:\s+Suspended$`).MatchString(out) {
		t.Errorf("show does not say Suspended:\n%s", out)
	}

	if out := h.mustSucceed(t, "instances", "resume", "f1"); strings.TrimSpace(out) != "resumed f1" {
		t.Errorf("got %q", out)
	}
	h.waitStatus(t, "f1", reprise.StatusRunning)

	// Global flags after the command, the key given as a flag rather than in the environment.
	r := runCLI(t, nil, "instances", "terminate", "f1", "--reason", "no longer needed", "--url", h.url, "--key", systemKey)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "terminated f1 (reason: no longer needed)" {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	inst := h.waitDone(t, "f1")
	if inst.Status != reprise.StatusTerminated || string(inst.Output) != `"no longer needed"` {
		t.Errorf("got %s %s", inst.Status, inst.Output)
	}
	if out := h.mustSucceed(t, "instances", "history", "f1"); !strings.Contains(out, "ExecutionSuspended") ||
		!strings.Contains(out, "reason=maintenance") || !strings.Contains(out, "ExecutionTerminated") {
		t.Errorf("history lacks the commands:\n%s", out)
	}

	for _, op := range []string{"terminate", "suspend", "resume"} {
		h.wantExit(t, exitState, []string{"cannot " + op + " f1 (410 Gone)", "has finished"}, "instances", op, "f1")
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.startSequence(t, "orig")

	out := h.mustSucceed(t, "instances", "restart", "orig")
	m := regexp.MustCompile(`^restarted orig as (\S+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no new ID in %q", out)
	}
	if inst := h.waitDone(t, m[1]); inst.Status != reprise.StatusCompleted || !strings.Contains(string(inst.Output), "Hello London!") {
		t.Errorf("restarted instance: %s %s", inst.Status, inst.Output)
	}

	before, err := h.app.Client().GetInstance(testCtx(t), "orig")
	if err != nil {
		t.Fatal(err)
	}
	if out := h.mustSucceed(t, "instances", "restart", "orig", "--same-id"); out != "restarted orig\n" {
		t.Errorf("got %q", out)
	}
	inst := h.waitDone(t, "orig")
	if inst.ExecutionID == before.ExecutionID || inst.Status != reprise.StatusCompleted {
		t.Errorf("want a new completed execution; before %s, after %s %s", before.ExecutionID, inst.ExecutionID, inst.Status)
	}
}

func TestRewindRefused(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.startForever(t, "running")
	h.startSequence(t, "done")
	h.wantExit(t, exitState, []string{"cannot rewind running (412 Precondition Failed)", "only failed instances"}, "instances", "rewind", "running")
	h.wantExit(t, exitState, []string{"cannot rewind done (410 Gone)"}, "instances", "rewind", "done", "--reason", "retry")
}

func TestPurge(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		h.startSequence(t, id)
	}
	h.startForever(t, "active")
	ctx := testCtx(t)

	if out := h.mustSucceed(t, "instances", "purge", "p1"); out != "purged p1\n" {
		t.Errorf("got %q", out)
	}
	if _, err := h.app.Client().GetInstance(ctx, "p1"); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Errorf("p1 still there: %v", err)
	}
	h.wantExit(t, exitState, []string{"cannot purge active (409 Conflict)", "terminate it first"}, "instances", "purge", "active")

	if out := h.mustSucceed(t, "instances", "purge", "--created-from", "-1h", "--status", "Completed,Failed"); out != "purged 2 instances\n" {
		t.Errorf("got %q", out)
	}
	// Nothing left to purge is not an error for a cleanup job.
	if out := h.mustSucceed(t, "instances", "purge", "--created-from", "-1h", "--json"); strings.TrimSpace(out) != `{"instancesDeleted":0}` {
		t.Errorf("got %q", out)
	}
	list := h.mustSucceed(t, "instances", "list")
	if strings.Contains(list, "p2") || strings.Contains(list, "p3") || !strings.Contains(list, "active") {
		t.Errorf("after purge:\n%s", list)
	}

	h.wantExit(t, exitUsage, []string{"needs an instance ID, or --created-from"}, "instances", "purge")
	h.wantExit(t, exitUsage, []string{"not both"}, "instances", "purge", "p2", "--created-from", "-1h")
}

func TestConnectionAndKeyErrors(t *testing.T) {
	t.Parallel()
	h := startHost(t)

	t.Run("wrong key exits 5", func(t *testing.T) {
		h.wantExit(t, exitUnreachable, []string{"the host refused the key (401)", "--key or REPRISE_KEY"}, "instances", "list", "--key", "wrong")
	})
	t.Run("missing key exits 5", func(t *testing.T) {
		// With the base path in the URL there is no loopback route to fall back on.
		r := runCLI(t, map[string]string{"REPRISE_URL": h.url + "/runtime/webhooks/durabletask"}, "instances", "list")
		checkExit(t, r, exitUnreachable, []string{"the host requires a key (401)", "reprise keys"}, nil)
	})
	t.Run("unreachable host exits 5", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		r := runCLI(t, map[string]string{"REPRISE_URL": "http://" + addr}, "instances", "show", "x")
		checkExit(t, r, exitUnreachable, []string{"cannot reach the host at http://" + addr, "connection refused", "set --url or REPRISE_URL"}, nil)
	})
	t.Run("URL with the API base path", func(t *testing.T) {
		h.startSequence(t, "via-base")
		out := h.mustSucceed(t, "--url", h.url+"/runtime/webhooks/durabletask/", "instances", "show", "via-base")
		if !strings.Contains(out, "Completed") {
			t.Errorf("got %q", out)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REPRISE_URL": "http://127.0.0.1:1"} // never contacted
	cases := []struct {
		args []string
		msgs []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`, "Usage:", "Exit codes:"}},
		{[]string{"instances", "frob"}, []string{`unknown command "instances frob"`, "Usage: reprise instances"}},
		{[]string{"instances"}, []string{"needs a subcommand"}},
		{[]string{"instances", "list", "--bogus"}, []string{"flag provided but not defined: -bogus", "Usage: reprise instances list"}},
		{[]string{"instances", "list", "--status", "Runing"}, []string{`unknown status "Runing"`}},
		{[]string{"instances", "list", "--created-from", "yesterday"}, []string{"--created-from", "cannot read"}},
		{[]string{"instances", "list", "--created-from", "24h"}, []string{"-24h"}},
		{[]string{"instances", "show"}, []string{"exactly one instance ID"}},
		{[]string{"instances", "raise", "id"}, []string{"an event name"}},
		{[]string{"instances", "raise", "id", "ev", "{"}, []string{"not valid JSON"}},
		{[]string{"instances", "raise", "id", "ev", "1", "--data-file", "x"}, []string{"not both"}},
		{[]string{"start-new"}, []string{"orchestrator's name"}},
		{[]string{"start-new", "x", "--input", "[1,"}, []string{"input is not valid JSON"}},
		{[]string{"--url", "ftp://host", "instances", "list"}, []string{"invalid --url"}},
		{[]string{"instances", "list", "--timeout", "0s"}, []string{"--timeout must be positive"}},
		{[]string{"help", "nothing"}, []string{`no help for "nothing"`}},
	}
	for _, c := range cases {
		r := runCLI(t, env, c.args...)
		checkExit(t, r, exitUsage, c.msgs, c.args)
	}

	r := runCLI(t, env)
	checkExit(t, r, exitUsage, []string{"Usage:"}, nil)

	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "instances", "purge"}, {"instances", "list", "-h"}, {"version"}} {
		r := runCLI(t, env, args...)
		if r.code != 0 || r.stdout == "" {
			t.Errorf("reprise %s: exit %d, stdout %q", strings.Join(args, " "), r.code, r.stdout)
		}
	}
	if r := runCLI(t, env, "help"); !strings.Contains(r.stdout, "5  host unreachable") {
		t.Errorf("help does not document the exit codes:\n%s", r.stdout)
	}
}

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args    []string
		pos     string
		reason  string
		history bool
	}{
		{[]string{"id", "--reason", "r"}, "id", "r", false},
		{[]string{"--reason", "r", "id"}, "id", "r", false},
		{[]string{"id", "--history", "ev", "--reason=x"}, "id ev", "x", true},
		{[]string{"id", "--", "-5", "--history"}, "id -5 --history", "", false},
		{[]string{"--reason", "--", "id"}, "id", "--", false},
	} {
		fs := newFlagSet("t")
		reason := fs.String("reason", "", "")
		history := fs.Bool("history", false, "")
		pos, err := parseArgs(fs, c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if strings.Join(pos, " ") != c.pos || *reason != c.reason || *history != c.history {
			t.Errorf("%q: got %q reason %q history %v", c.args, pos, *reason, *history)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                       now,
		"-24h":                      now.Add(-24 * time.Hour),
		"-7d":                       now.Add(-7 * 24 * time.Hour),
		"+90m":                      now.Add(90 * time.Minute),
		"2026-01-02":                time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		"2026-01-02T15:04:05+02:00": time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "24h", "yesterday", "-1y", "2026-13-01"} {
		if _, err := parseTime(in, now); err == nil {
			t.Errorf("parseTime(%q) should fail", in)
		}
	}
}

func TestAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7071":                                 "http://127.0.0.1:7071/runtime/webhooks/durabletask",
		"localhost:7071/":                                       "http://localhost:7071/runtime/webhooks/durabletask",
		"https://app.example.net/prefix?code=x":                 "https://app.example.net/prefix/runtime/webhooks/durabletask",
		"https://app.example.net/runtime/webhooks/durabletask/": "https://app.example.net/runtime/webhooks/durabletask",
		"http://127.0.0.1:17071/durabletask":                    "http://127.0.0.1:17071/durabletask",
	} {
		c, err := newAPIClient(in, "", "", time.Second)
		if err != nil || c.base != want {
			t.Errorf("newAPIClient(%q): base %q, %v; want %q", in, c.base, err, want)
		}
	}
	if got := instancePath("a b/c?d#e", "raiseEvent", "x/y"); got != "/instances/a%20b%2Fc%3Fd%23e/raiseEvent/x%2Fy" {
		t.Errorf("instancePath: %s", got)
	}
}

// TestLocalHostWithoutKeys: against the README's host (no keys configured, management API not
// anonymous) on this machine, the CLI works without a key (through the loopback route), and
// `reprise keys` prints the keys the host generated, which open its webhook route.
func TestLocalHostWithoutKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "readme.db")
	app := reprise.NewApp(reprise.WithSQLiteFile(path), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(sayHello, helloSequence)
	srv := hosttest.Serve(t, app)
	env := map[string]string{"REPRISE_URL": srv.URL}

	r := runCLI(t, env, "start-new", "hello_sequence", "--id", "local-1", "--input", `["Oslo"]`, "--wait")
	checkExit(t, r, exitOK, nil, []string{"start-new"})
	if !strings.Contains(r.stdout, "Hello Oslo!") {
		t.Errorf("start-new --wait without a key: %s", r.stdout)
	}
	r = runCLI(t, env, "instances", "list")
	checkExit(t, r, exitOK, nil, []string{"instances", "list"})
	if !strings.Contains(r.stdout, "local-1") {
		t.Errorf("instances list without a key: %s", r.stdout)
	}

	r = runCLI(t, nil, "keys", "--store", path, "--json")
	checkExit(t, r, exitOK, nil, []string{"keys"})
	var keys struct{ Store, Hub, MasterKey, SystemKey string }
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || keys.Hub != "default" || len(keys.SystemKey) < 32 || len(keys.MasterKey) < 32 {
		t.Fatalf("keys --json: %s (%v)", r.stdout, err)
	}
	webhook := srv.URL + "/runtime/webhooks/durabletask"
	for _, key := range []string{keys.SystemKey, keys.MasterKey} {
		r = runCLI(t, map[string]string{"REPRISE_URL": webhook, "REPRISE_KEY": key}, "instances", "show", "local-1")
		checkExit(t, r, exitOK, nil, []string{"instances", "show"})
	}
	r = runCLI(t, nil, "keys", "--store", path)
	checkExit(t, r, exitOK, nil, []string{"keys"})
	if !strings.Contains(r.stdout, "system key  "+keys.SystemKey) || !strings.Contains(r.stdout, "master key  "+keys.MasterKey) {
		t.Errorf("keys: %s", r.stdout)
	}
	r = runCLI(t, nil, "keys", "--store", path, "--hub", "other")
	checkExit(t, r, exitNotFound, []string{`no generated keys in task hub "other"`}, []string{"keys", "--hub", "other"})
	r = runCLI(t, nil, "keys", "--store", filepath.Join(t.TempDir(), "none.db"))
	checkExit(t, r, exitNotFound, []string{"no SQLite store"}, []string{"keys"})
}

// TestHostileArguments checks that what every host refuses (text that is not UTF-8, holds NUL
// or is too long, IDs that are path steps, dates outside the stores' range) is a usage error
// before anything is sent: the URL is never contacted.
func TestHostileArguments(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REPRISE_URL": "http://127.0.0.1:1"} // never contacted
	long := strings.Repeat("i", 2049)
	dateRange := "outside the supported range 1678-01-01 to 2261-12-31"
	cases := []struct {
		args []string
		msgs []string
	}{
		{[]string{"instances", "show", "x-\xff"}, []string{"instance ID", "not valid UTF-8"}},
		{[]string{"instances", "history", "x\x00y"}, []string{"instance ID", "NUL"}},
		{[]string{"instances", "terminate", long}, []string{"instance ID is 2049 bytes long"}},
		{[]string{"instances", "terminate", "x", "--reason", "why\xff"}, []string{"--reason", "not valid UTF-8"}},
		{[]string{"instances", "suspend", "x", "--reason", strings.Repeat("r", 64<<10+1)}, []string{"--reason is 65537 bytes long"}},
		{[]string{"instances", "raise", "x\xff", "ev"}, []string{"instance ID", "not valid UTF-8"}},
		{[]string{"instances", "raise", "x", "ev\x00"}, []string{"event name", "NUL"}},
		{[]string{"instances", "raise", "x", "ev", "\"\xff\""}, []string{"event data is not valid UTF-8"}},
		{[]string{"instances", "purge", "x\xff"}, []string{"instance ID", "not valid UTF-8"}},
		{[]string{"instances", "restart", "x\x00"}, []string{"NUL"}},
		{[]string{"instances", "list", "--prefix", "p\xff"}, []string{"--prefix", "not valid UTF-8"}},
		{[]string{"instances", "list", "--continuation", "\xff"}, []string{"continuation token", "not valid UTF-8"}},
		{[]string{"instances", "list", "--created-from", "9999-01-01"}, []string{"--created-from", dateRange}},
		{[]string{"instances", "list", "--created-to", "0001-01-01"}, []string{"--created-to", dateRange}},
		{[]string{"instances", "purge", "--created-from", "0001-01-01", "--created-to", "0001-01-01"}, []string{dateRange}},
		{[]string{"instances", "purge", "--created-from", "2262-01-01T00:00:00Z"}, []string{dateRange}},
		{[]string{"start-new", "hello\xff"}, []string{"orchestrator name", "not valid UTF-8"}},
		{[]string{"start-new", "hello", "--id", "x-\xff"}, []string{"--id", "not valid UTF-8"}},
		{[]string{"start-new", "hello", "--id", ".."}, []string{"--id", "URLs would lead elsewhere"}},
		{[]string{"start-new", "hello", "--id", "."}, []string{"--id", "URLs would lead elsewhere"}},
		{[]string{"start-new", "hello", "--input", "\"\xff\""}, []string{"input is not valid UTF-8"}},
		{[]string{"start-new", "hello", "--version", "1.\xff"}, []string{"--version", "not valid UTF-8"}},
		{[]string{"start-new", "hello", "--version", "1\x00", "--wait"}, []string{"--version", "NUL"}},
		{[]string{"start-new", "hello", "--version", long}, []string{"--version is 2049 bytes long"}},
		{[]string{"instances", "list", "--version", "1.0", "--version", "\xe2\x82"}, []string{"--version", "not valid UTF-8"}},
		{[]string{"instances", "list", "--version", "\x00"}, []string{"--version", "NUL"}},
		{[]string{"instances", "list", "--version", long}, []string{"--version is 2049 bytes long"}},
		{append([]string{"instances", "list"}, slices.Repeat([]string{"--version", "v"}, 101)...), []string{"--version is given 101 times", "at most 100"}},
	}
	for _, c := range cases {
		r := runCLI(t, env, c.args...)
		checkExit(t, r, exitUsage, c.msgs, c.args)
	}
}

// TestVersions: start-new stamps a version, instances list shows it in a VERSION column and
// filters by it (exactly; "" for none), instances show prints it.
func TestVersions(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.mustSucceed(t, "start-new", "hello_sequence", "--id", "ver-1", "--version", "1.0 beta+1", "--input", cities)
	h.mustSucceed(t, "start-new", "hello_sequence", "--id", "ver-2", "--version", "2.0", "--input", cities, "--wait")
	h.startSequence(t, "ver-none")
	h.waitDone(t, "ver-1")
	if inst, err := h.app.Client().GetInstance(testCtx(t), "ver-1"); err != nil || inst.Version != "1.0 beta+1" {
		t.Fatalf("start-new --version: instance %+v, %v; want version 1.0 beta+1", inst, err)
	}

	listed := func(args ...string) []string {
		t.Helper()
		out := h.mustSucceed(t, append([]string{"--json", "instances", "list"}, args...)...)
		var page []struct{ InstanceID, Version string }
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out)
		}
		var got []string
		for _, s := range page {
			got = append(got, s.InstanceID+"@"+s.Version)
		}
		slices.Sort(got)
		return got
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--version", "1.0 beta+1"}, []string{"ver-1@1.0 beta+1"}},
		{[]string{"--version", "2.0", "--version=1.0 beta+1"}, []string{"ver-1@1.0 beta+1", "ver-2@2.0"}},
		{[]string{"--version", ""}, []string{"ver-none@"}},
		{[]string{"--version", "2.0", "--status", "Running"}, nil},
		{[]string{"--version", "1.0"}, nil},
	} {
		if got := listed(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("instances list %q = %v, want %v", c.args, got, c.want)
		}
	}

	out := h.mustSucceed(t, "instances", "list", "--order", "oldest")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^INSTANCE ID\s+NAME\s+STATUS\s+CREATED\s+UPDATED\s+VERSION$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^ver-1\s+hello_sequence\s+Completed\s+\S+\s+\S+\s+1\.0 beta\+1$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^ver-none\s+hello_sequence\s+Completed\s+\S+\s+\S+$`).MatchString(lines[3]) {
		t.Errorf("want a VERSION column, empty for ver-none:\n%s", out)
	}

	show := h.mustSucceed(t, "instances", "show", "ver-1")
	if !regexp.MustCompile(`(?m)^name:\s+hello_sequence\nversion:\s+1\.0 beta\+1\nruntimeStatus:`).MatchString(show) {
		t.Errorf("instances show: no plain version line after the name:\n%s", show)
	}
	if show := h.mustSucceed(t, "instances", "show", "ver-none"); strings.Contains(show, "version") {
		t.Errorf("instances show of an instance without a version shows one:\n%s", show)
	}
}
