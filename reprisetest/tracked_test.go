package reprisetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// scripted is a store whose claims and commits answer what the test says.
type scripted struct {
	store.Store // nil: only the methods below are called
	work        []store.OrchestrationWork
	tasks       []store.ActivityWork
	commitErr   error
}

func (s *scripted) ClaimOrchestrations(context.Context, string, store.Names, int, time.Duration) ([]store.OrchestrationWork, error) {
	return s.work, nil
}

func (s *scripted) ClaimActivities(context.Context, string, store.Names, int, time.Duration) ([]store.ActivityWork, error) {
	return s.tasks, nil
}

func (s *scripted) CommitEpisode(context.Context, store.Episode) error { return s.commitErr }

func (s *scripted) CompleteActivity(context.Context, int64, store.Lease, store.Message) error {
	return s.commitErr
}

func TestTrackedCountsClaimsUntilTheyEnd(t *testing.T) {
	ctx := context.Background()
	lease := store.Lease{Owner: "o", Token: 7}
	inner := &scripted{
		// Two instances under one claim's token: each ends with its own commit.
		work: []store.OrchestrationWork{
			{Instance: store.Instance{ID: "a"}, Lease: lease},
			{Instance: store.Instance{ID: "b"}, Lease: lease},
		},
		tasks: []store.ActivityWork{{Task: store.Task{ID: 3}, Lease: lease}},
	}
	s := newTracked(inner)
	if busy, _ := s.busy(); busy {
		t.Fatal("busy before any claim")
	}
	_, _ = s.ClaimOrchestrations(ctx, "o", nil, 10, time.Minute)
	_, _ = s.ClaimActivities(ctx, "o", nil, 10, time.Minute)
	if n := s.inflightCount(); n != 3 {
		t.Fatalf("%d claims in flight, want 3", n)
	}

	// A commit that failed for a reason the engine retries does not end the claim.
	inner.commitErr = errors.New("disk I/O error")
	_, gen := s.busy()
	_ = s.CommitEpisode(ctx, store.Episode{Lease: lease, Instance: store.Instance{ID: "a"}})
	if n := s.inflightCount(); n != 3 {
		t.Errorf("after a failed commit %d claims in flight, want 3", n)
	}
	if _, gen2 := s.busy(); gen2 != gen {
		t.Error("a commit that changed nothing moved the generation")
	}
	claimed := inner.work
	inner.work = nil
	_, _ = s.ClaimOrchestrations(ctx, "o", nil, 10, time.Minute) // a poll that finds nothing
	if _, gen3 := s.busy(); gen3 != gen {
		t.Error("an empty claim moved the generation: polling would look like progress")
	}
	inner.work = claimed

	// Applied: the generation moves.
	inner.commitErr = nil
	_ = s.CommitEpisode(ctx, store.Episode{Lease: lease, Instance: store.Instance{ID: "a"}})
	if _, gen4 := s.busy(); gen4 == gen {
		t.Error("an applied commit did not move the generation")
	}

	// Refused for good: ended too.
	inner.commitErr = fmt.Errorf("sqlite: commit: %w", store.ErrLeaseLost)
	_ = s.CommitEpisode(ctx, store.Episode{Lease: lease, Instance: store.Instance{ID: "b"}})
	if n := s.inflightCount(); n != 1 {
		t.Errorf("%d claims in flight, want 1 (the task)", n)
	}
	inner.commitErr = fmt.Errorf("closing: %w", store.ErrClosed)
	_ = s.CompleteActivity(ctx, 3, lease, store.Message{})
	if busy, _ := s.busy(); busy {
		t.Errorf("busy with %d claims after every one ended", s.inflightCount())
	}
	select {
	case <-s.changed:
	default:
		t.Error("no change signalled")
	}
}
