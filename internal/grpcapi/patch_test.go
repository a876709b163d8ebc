package grpcapi

import (
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
)

// A Go orchestrator's patch marker has no form in the Durable Task protocol: SDK workers and
// clients are given the history without it, and the events around it unchanged.
func TestPatchMarkerIsLeftOutOfProtoHistories(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	marker := history.New(history.PatchApplied, now)
	marker.Name = "send-receipt"
	pe, err := historyEvent(marker)
	if pe != nil || err != nil {
		t.Fatalf("historyEvent(PatchApplied) = %v, %v; want nothing and no error", pe, err)
	}
	exec := history.New(history.ExecutionStarted, now)
	exec.Name = "orch"
	sched := history.New(history.TaskScheduled, now)
	sched.ID, sched.Name = 0, "say"
	out, err := protoEvents([]history.Event{history.New(history.OrchestratorStarted, now), exec, marker, sched}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[1].GetExecutionStarted() == nil || out[2].GetTaskScheduled().GetName() != "say" {
		t.Fatalf("proto events %v, want the three events around the marker", out)
	}
}
