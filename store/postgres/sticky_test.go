package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// TestStickyRouting: while the host that committed an instance's last episode renews, other
// hosts leave the instance to it; once it stops renewing, or releases its leases, they take it.
// Two stores on one hub stand for two hosts.
func TestStickyRouting(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openStore(t, dsn, Options{Hub: "h"})
	b := openStore(t, dsn, Options{Hub: "h"})
	const lease = time.Minute

	if err := a.RenewLeases(t.Context(), "A", nil, lease); err != nil {
		t.Fatal(err)
	}
	create(t, a, "x")
	w := claim(t, a, "A", lease)
	if len(w) != 1 {
		t.Fatalf("A claimed %d instances, want x", len(w))
	}
	commitWithMessage(t, a, w[0], store.StatusRunning) // x is sticky to A, with a visible message

	// While A renews, B does not take x.
	for range 5 {
		if err := a.RenewLeases(t.Context(), "A", nil, lease); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, b, "B", lease); len(got) != 0 {
			t.Fatalf("B claimed %q, sticky to A, while A renews", got[0].Instance.ID)
		}
	}

	// A renews one last time, briefly, then stops: once its liveness expired, B takes x.
	if err := a.RenewLeases(t.Context(), "A", nil, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var got []store.OrchestrationWork
	storetest.Eventually(t, "B to take x after A stopped renewing", func() bool {
		got = claim(t, b, "B", lease)
		return len(got) == 1
	})
	if got[0].Instance.ID != "x" || len(got[0].Messages) != 1 || string(got[0].Messages[0].Data) != "next" {
		t.Fatalf("B claimed %+v, want x with its pending message", got[0])
	}
	// x is sticky to B now, but B never renewed: a host that does not announce itself through
	// RenewLeases attracts no sticky routing, so A (renewing again) may take x at once.
	commitWithMessage(t, b, got[0], store.StatusRunning)
	if err := a.RenewLeases(t.Context(), "A", nil, lease); err != nil {
		t.Fatal(err)
	}
	got = claim(t, a, "A", lease)
	if len(got) != 1 {
		t.Fatalf("A claimed %d instances; x is sticky to B, which never renewed, so want x", len(got))
	}
	commitWithMessage(t, a, got[0], store.StatusRunning) // sticky to A again
	if got := claim(t, b, "B", lease); len(got) != 0 {
		t.Fatal("B claimed x, sticky to A, while A is alive")
	}

	// A leaves (ReleaseLeases, as at shutdown): B takes x at once.
	bsig := b.WorkSignal(store.OrchestrationWorkKind)
	drain(bsig)
	if err := a.ReleaseLeases(t.Context(), "A"); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, bsig, "orchestration signal on B after A released its leases")
	got = claim(t, b, "B", lease)
	if len(got) != 1 || got[0].Instance.ID != "x" {
		t.Fatalf("B claimed %d instances right after A's ReleaseLeases, want x", len(got))
	}
}

// TestStickyNotifications checks that a message to an instance sticky to a live host is announced
// to that host alone (the others could not claim it anyway), and that hosts act on what is
// addressed to them or to anyone.
func TestStickyNotifications(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := openStore(t, dsn, Options{Hub: "h"})
	const lease = time.Minute
	listener, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(t.Context(), "LISTEN "+pgx.Identifier{a.channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// next returns the next orchestration payload.
	next := func() string {
		t.Helper()
		for {
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			n, err := listener.WaitForNotification(ctx)
			cancel()
			if err != nil {
				t.Fatalf("no notification: %v", err)
			}
			if strings.HasPrefix(n.Payload, "o:") {
				return n.Payload
			}
		}
	}

	create(t, a, "x")
	if p := next(); p != "o:" {
		t.Fatalf("payload for a new instance = %q, want o: (anyone)", p)
	}
	w := claim(t, a, "A", lease)
	commitWithMessage(t, a, w[0], store.StatusRunning) // sticky to A, which never renewed
	if p := next(); p != "o:" {
		t.Fatalf("payload for a message to an instance sticky to a host that never renewed = %q, want o:", p)
	}
	if err := a.RenewLeases(t.Context(), "A", nil, lease); err != nil {
		t.Fatal(err)
	}
	if err := a.SendMessage(t.Context(), store.Message{InstanceID: "x", Data: []byte("event")}); err != nil {
		t.Fatal(err)
	}
	if p := next(); p != "o:A" {
		t.Fatalf("payload for a message to an instance sticky to renewing host A = %q, want o:A", p)
	}

	// The receiving side: b hosts owner B.
	b := openStore(t, dsn, Options{Hub: "h"})
	if _, err := b.ClaimOrchestrations(t.Context(), "B", store.Names{"o"}, 1, lease); err != nil {
		t.Fatal(err)
	}
	sig := b.WorkSignal(store.OrchestrationWorkKind)
	for _, c := range []struct {
		payload string
		wake    bool
	}{{"o:A", false}, {"o:B", true}, {"o:", true}} {
		drain(sig)
		b.dispatch(&pgconn.Notification{PID: 1, Channel: b.channel, Payload: c.payload})
		select {
		case <-sig:
			if !c.wake {
				t.Errorf("host of B woken by %q", c.payload)
			}
		default:
			if c.wake {
				t.Errorf("host of B not woken by %q", c.payload)
			}
		}
	}
}
