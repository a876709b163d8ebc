package storetest

import (
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

func mustBacklog(t *testing.T, st store.Store) store.Backlog {
	t.Helper()
	b, err := st.Backlog(ctxOf(t))
	if err != nil {
		t.Fatalf("Backlog: %v", err)
	}
	return b
}

// testBacklog: Backlog counts the messages visible now by instance kind (not future timers or
// scheduled signals, and whether or not the instance is leased) and the tasks no live lease
// holds, of every name.
func (s suite) testBacklog(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	if b := mustBacklog(t, st); b != (store.Backlog{}) {
		t.Fatalf("backlog of an empty hub = %+v, want zeros", b)
	}

	mustCreate(t, st, "o1")
	mustCreate(t, st, "o2")
	later := time.Now().Add(time.Hour)
	if err := st.SendMessage(ctx, store.Message{InstanceID: "o2", Data: []byte("timer"), VisibleAt: later}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	e1, e2 := store.EntityInstanceID("counter", "a"), store.EntityInstanceID("other", "b")
	mustSendEntities(t, st, signal(e1, "x"), signal(e1, "y"), signal(e2, "z"),
		store.Message{InstanceID: e2, Data: []byte("scheduled"), VisibleAt: later})
	if b, want := mustBacklog(t, st), (store.Backlog{OrchestrationMessages: 2, EntityMessages: 3}); b != want {
		t.Fatalf("backlog after two starts, a timer and four signals (one scheduled) = %+v, want %+v", b, want)
	}

	// A claimed instance's messages still wait until its episode consumes them.
	w := claimID(t, st, "n", "o1")
	if b := mustBacklog(t, st); b.OrchestrationMessages != 2 {
		t.Fatalf("visible orchestration messages while o1 is claimed = %d, want 2", b.OrchestrationMessages)
	}
	e := consumeAll(w)
	for _, name := range []string{"act0", "act1", "act2"} {
		e.Tasks = append(e.Tasks, store.Task{InstanceID: "o1", ExecutionID: "exec-o1", Name: name})
	}
	mustCommit(t, st, e)
	if b, want := mustBacklog(t, st), (store.Backlog{OrchestrationMessages: 1, EntityMessages: 3, ActivityTasks: 3}); b != want {
		t.Fatalf("backlog after o1's episode scheduled three tasks = %+v, want %+v", b, want)
	}
	if got := claimTasks(t, st, "a", 2, longLease); len(got) != 2 {
		t.Fatalf("claimed %d tasks, want 2", len(got))
	}
	if b := mustBacklog(t, st); b.ActivityTasks != 1 {
		t.Fatalf("waiting tasks after two were claimed = %d, want 1", b.ActivityTasks)
	}
}
