package dashboard

import (
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// The history table names the patch an execution took (ctx.IsPatched); the timeline, which
// draws tasks and marks, has nothing to draw for it and must not fail on it.
func TestPatchMarkerRow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	marker := history.New(history.PatchApplied, now)
	marker.Name = "send-receipt"
	rows := HistoryRows([]history.Event{history.New(history.OrchestratorStarted, now), marker})
	if len(rows) != 1 || rows[0].Type != "PatchApplied" || rows[0].Name != "send-receipt" || rows[0].ID != -1 {
		t.Fatalf("rows %+v, want one PatchApplied row with the name", rows)
	}
	exec := history.New(history.ExecutionStarted, now)
	exec.Name = "orch"
	tl := BuildTimeline(store.Instance{ID: "i", Name: "orch", Status: store.StatusRunning, CreatedAt: now, UpdatedAt: now},
		[]history.Event{history.New(history.OrchestratorStarted, now), exec, marker})
	if len(tl.Spans) != 0 || len(tl.Marks) != 0 {
		t.Fatalf("timeline spans %+v, marks %+v: a marker is neither", tl.Spans, tl.Marks)
	}
}
