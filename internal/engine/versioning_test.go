package engine_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
)

// startVersion creates an instance of the orchestrator name with an orchestration version.
func startVersion(t *testing.T, st store.Store, name, id, version string) {
	t.Helper()
	now := time.Now().UTC()
	execID := engine.RandomID()
	ev := history.New(history.ExecutionStarted, now)
	ev.Name, ev.Input, ev.InstanceID, ev.ExecutionID, ev.Version = name, json.RawMessage(`1`), id, execID, version
	msg, err := history.EncodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	inst := store.Instance{ID: id, Name: name, ExecutionID: execID, Status: store.StatusPending, Input: []byte(`1`),
		Version: version, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateInstance(t.Context(), inst, store.Message{InstanceID: id, ExecutionID: execID, Data: msg}, store.ReuseNever); err != nil {
		t.Fatal(err)
	}
}

// TestVersionReject: a host of version 1.0 (CurrentOrOlder, Reject) runs the instances of 1.0,
// older ones and those without a version, and gives back one of 2.0 without touching it; a host
// of 2.0 on the same store then runs it.
func TestVersionReject(t *testing.T) {
	st := openSQLite(t)
	var r runs
	logs := &logRecorder{}
	newEngine(t, engine.Options{Store: st, Registry: chainRegistry(&r), Logger: slog.New(logs),
		Versioning:         versioning.Policy{Version: "1.0", Match: versioning.CurrentOrOlder, Failure: versioning.Reject},
		VersionRejectDelay: 20 * time.Millisecond, LeaseDuration: 3 * time.Second})
	for id, v := range map[string]string{"same": "1.0", "older": "0.9", "none": "", "newer": "2.0"} {
		startVersion(t, st, "chain", id, v)
	}
	for _, id := range []string{"same", "older", "none"} {
		if inst := waitDone(t, st, id, 10*time.Second); inst.Status != store.StatusCompleted || string(inst.Output) != "4" {
			t.Fatalf("%s: %s %s, want Completed 4", id, inst.Status, inst.Output)
		}
	}
	line := logs.wait(t, 10*time.Second, "orchestration left for a host that runs its version", "instanceId=newer")
	for _, want := range []string{"version=2.0", "workerVersion=1.0", "matchStrategy=CurrentOrOlder",
		"The orchestration version '2.0' is greater than the worker version '1.0'."} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	inst, err := st.GetInstance(t.Context(), "newer")
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != store.StatusPending || inst.HistoryLen != 0 || r.of("newer", 0) != 0 {
		t.Fatalf("the rejected instance was touched: %s, %d history chunks, %d runs", inst.Status, inst.HistoryLen, r.of("newer", 0))
	}

	newEngine(t, engine.Options{Store: st, Registry: chainRegistry(&r), Logger: slog.New(slog.DiscardHandler),
		Versioning: versioning.Policy{Version: "2.0", Match: versioning.CurrentOrOlder}})
	if inst := waitDone(t, st, "newer", 20*time.Second); inst.Status != store.StatusCompleted || inst.Version != "2.0" {
		t.Fatalf("newer: %s, version %q; want Completed by the 2.0 host", inst.Status, inst.Version)
	}
}

// TestVersionFail: under Fail, an instance of another version fails with VersionMismatch
// without running, and the parent of such a sub-orchestration hears of it as a failure.
func TestVersionFail(t *testing.T) {
	st := openSQLite(t)
	var childRan bool
	reg := registry{
		orchestrators: map[string]replay.Func{
			"parent": func(c *replay.Context) ([]byte, error) {
				// The child inherits 1.0 unless the call says otherwise; this one says 3.0.
				_, err := c.CallSubOrchestrator("child", "kid", "3.0", nil, nil).Await()
				var fe *replay.FailedError
				if !errors.As(err, &fe) {
					return nil, errors.New("the child did not fail")
				}
				return json.Marshal(fe.Failure.Type + ": " + fe.Failure.Message)
			},
			"child": func(c *replay.Context) ([]byte, error) { childRan = true; return nil, nil },
		},
	}
	newEngine(t, engine.Options{Store: st, Registry: reg, Logger: slog.New(slog.DiscardHandler),
		Versioning: versioning.Policy{Version: "2.0", Match: versioning.Strict, Failure: versioning.Fail}})
	startVersion(t, st, "parent", "p", "2.0")
	p := waitDone(t, st, "p", 10*time.Second)
	const msg = "The orchestration version '3.0' does not match the worker version '2.0'."
	if p.Status != store.StatusCompleted || string(p.Output) != `"VersionMismatch: `+msg+`"` {
		t.Fatalf("parent: %s %s", p.Status, p.Output)
	}
	kid := waitDone(t, st, "kid", 10*time.Second)
	f := history.DecodeFailure(kid.Failure)
	if kid.Status != store.StatusFailed || kid.Version != "3.0" || f == nil || f.Type != "VersionMismatch" || f.Message != msg || childRan {
		t.Fatalf("child: %s, version %q, failure %+v, ran %v", kid.Status, kid.Version, f, childRan)
	}
	chunks, err := st.History(t.Context(), "kid")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := history.DecodeAll(chunks)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type.String())
	}
	if got := strings.Join(types, ","); got != "OrchestratorStarted,ExecutionStarted,ExecutionCompleted" {
		t.Errorf("child history %s", got)
	}

	startVersion(t, st, "parent", "old", "")
	if inst := waitDone(t, st, "old", 10*time.Second); inst.Status != store.StatusFailed ||
		history.DecodeFailure(inst.Failure).Message != "The orchestration version '' does not match the worker version '2.0'." {
		t.Fatalf("an instance without a version under Strict: %s %s", inst.Status, inst.Output)
	}
}
