package storetest

import (
	"bytes"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

// testRewindInstance: a Failed instance is Running (output and failure cleared) as soon as
// RewindInstance returns, with the command in its inbox for the next claim, and its watchers
// are woken; any other status, or an unknown ID, changes nothing.
func (s suite) testRewindInstance(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "f")
	w := claimID(t, st, "n", "f")
	e := consumeAll(w)
	e.Instance.Status, e.Instance.Output, e.Instance.Failure = store.StatusFailed, []byte(`"boom"`), []byte(`{"message":"boom"}`)
	mustCommit(t, st, e)

	changed, stop := st.WatchInstance("f")
	defer stop()
	osig := st.WorkSignal(store.OrchestrationWorkKind)
	drain(osig)
	if err := st.RewindInstance(ctx, "f", store.Message{Data: []byte("rewind")}); err != nil {
		t.Fatalf("RewindInstance of a failed instance: %v", err)
	}
	got := mustGet(t, st, "f")
	if got.Status != store.StatusRunning || got.Output != nil || got.Failure != nil {
		t.Errorf("after RewindInstance: status %s, output %q, failure %q; want Running with neither", got.Status, got.Output, got.Failure)
	}
	waitSignal(t, changed, "watch after RewindInstance")
	waitSignal(t, osig, "orchestration signal after RewindInstance")
	w = claimID(t, st, "n", "f")
	if len(w.Messages) != 1 || !bytes.Equal(w.Messages[0].Data, []byte("rewind")) || w.Messages[0].InstanceID != "f" {
		t.Fatalf("the claim after RewindInstance: %+v, want the rewind command", w.Messages)
	}
	mustCommit(t, st, consumeAll(w)) // Running now

	err := st.RewindInstance(ctx, "f", store.Message{Data: []byte("again")})
	wantErr(t, "RewindInstance of a running instance", err, store.ErrNotFailed)
	if err := st.SendMessage(ctx, store.Message{InstanceID: "f", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	finish(t, st, "f", store.StatusCompleted)
	err = st.RewindInstance(ctx, "f", store.Message{Data: []byte("again")})
	wantErr(t, "RewindInstance of a completed instance", err, store.ErrNotFailed)
	if got := mustGet(t, st, "f"); got.Status != store.StatusCompleted || !bytes.Equal(got.Output, []byte(`"done"`)) {
		t.Errorf("a refused RewindInstance changed the instance: %+v", got)
	}
	if work := claim(t, st, "n", 10, longLease); len(work) != 0 {
		t.Errorf("a refused RewindInstance left a message: %+v", work)
	}
	wantErr(t, "RewindInstance of an unknown instance", st.RewindInstance(ctx, "nope", store.Message{Data: []byte("x")}), store.ErrNotFound)
	wantErr(t, "RewindInstance of an ID with NUL", st.RewindInstance(ctx, "a\x00b", store.Message{Data: []byte("x")}), store.ErrInvalidArgument)
}
