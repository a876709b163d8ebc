package engine

import (
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
)

// A completion has a retroactive span only if it closes a task still open: a result delivered
// twice, one for a task the history already saw complete, or one for no task, has none; entity
// replies pair by request ID.
func TestRetroactiveSpansPairOnce(t *testing.T) {
	now := time.Now()
	ev := func(typ history.Type, id, taskID int32, req string) history.Event {
		e := history.New(typ, now)
		e.ID, e.TaskID, e.RequestID = id, taskID, req
		return e
	}
	old := []history.Event{
		ev(history.TaskScheduled, 0, 0, ""),
		ev(history.TaskCompleted, -1, 0, ""),
		ev(history.TaskScheduled, 1, 0, ""),
		ev(history.SubOrchestrationInstanceCreated, 2, 0, ""),
		ev(history.EntityOperationCalled, 3, 0, "call-a"),
		ev(history.EntityLockRequested, 4, 0, "section-b"),
	}
	var sp episodeSpans
	sp.fillOpen(old)
	if len(sp.tasks) != 0 || len(sp.orch.open) != 4 {
		t.Fatalf("from the history: %d spans to emit, %d open; want 0 and 4", len(sp.tasks), len(sp.orch.open))
	}
	sp.track([]history.Event{
		ev(history.TaskCompleted, -1, 0, ""), // task 0 completed in the history already
		ev(history.TaskFailed, -1, 1, ""),
		ev(history.TaskCompleted, -1, 1, ""), // delivered twice
		ev(history.SubOrchestrationInstanceFailed, -1, 2, ""),
		ev(history.TaskCompleted, -1, 9, ""), // no such task
		ev(history.EntityOperationCompleted, -1, 0, "call-a"),
		ev(history.EntityLockGranted, -1, 0, "section-b"),
		ev(history.EntityOperationFailed, -1, 0, "call-a"), // again
	}, true)
	got := map[int32]history.Type{}
	for _, s := range sp.tasks {
		if _, dup := got[s.scheduled.ID]; dup {
			t.Errorf("two spans for scheduling event %d", s.scheduled.ID)
		}
		got[s.scheduled.ID] = s.done.Type
	}
	want := map[int32]history.Type{1: history.TaskFailed, 2: history.SubOrchestrationInstanceFailed,
		3: history.EntityOperationCompleted, 4: history.EntityLockGranted}
	if len(got) != len(want) {
		t.Fatalf("spans for %v, want %v", got, want)
	}
	for id, typ := range want {
		if got[id] != typ {
			t.Errorf("scheduling event %d closed by %v, want %v", id, got[id], typ)
		}
	}
	if len(sp.orch.open) != 0 {
		t.Errorf("%d still open", len(sp.orch.open))
	}
}
