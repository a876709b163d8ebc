package notify

import (
	"sync"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

func TestSignalCoalescesAndNeverBlocks(t *testing.T) {
	n := New()
	ch := n.Signal(store.OrchestrationWorkKind)
	other := n.Signal(store.OrchestrationWorkKind)
	act := n.Signal(store.ActivityWorkKind)
	for range 10 {
		n.Notify(store.OrchestrationWorkKind) // must not block with nobody receiving
	}
	for i, c := range []<-chan struct{}{ch, other} {
		select {
		case <-c:
		default:
			t.Fatalf("channel %d of the kind: no signal after Notify", i)
		}
		select {
		case <-c:
			t.Fatalf("channel %d: signals were not coalesced", i)
		default:
		}
	}
	select {
	case <-act:
		t.Fatal("the other kind was signalled")
	default:
	}
}

func TestNotifyBeforeSignalIsKept(t *testing.T) {
	n := New()
	n.Notify(store.ActivityWorkKind)
	select {
	case <-n.Signal(store.ActivityWorkKind):
	default:
		t.Fatal("a Notify before the first Signal call was lost")
	}
}

func TestWatchClosedOnChanged(t *testing.T) {
	n := New()
	a1, stopA1 := n.Watch("a")
	a2, stopA2 := n.Watch("a")
	b, stopB := n.Watch("b")
	defer stopA1()
	defer stopA2()
	defer stopB()

	n.Changed("a")
	for i, ch := range []<-chan struct{}{a1, a2} {
		select {
		case <-ch:
		default:
			t.Fatalf("watch %d on a not closed", i)
		}
	}
	select {
	case <-b:
		t.Fatal("watch on b closed by a change of a")
	default:
	}

	// A watch registered after a change waits for the next one.
	a3, stopA3 := n.Watch("a")
	defer stopA3()
	select {
	case <-a3:
		t.Fatal("new watch already closed")
	default:
	}
	n.Changed("a")
	<-a3
	n.Changed("a") // no watchers: must not panic (double close)
}

func TestStopRemovesWatch(t *testing.T) {
	n := New()
	ch, stop := n.Watch("x")
	_, stop2 := n.Watch("y")
	if got := n.Watching(); got != 2 {
		t.Fatalf("Watching = %d, want 2", got)
	}
	stop()
	stop() // idempotent
	stop2()
	if got := n.Watching(); got != 0 {
		t.Fatalf("Watching after stop = %d, want 0 (leak)", got)
	}
	n.Changed("x")
	select {
	case <-ch:
		t.Fatal("stopped watch was closed")
	default:
	}
	// stop after fire is harmless too.
	ch2, stop3 := n.Watch("z")
	n.Changed("z")
	<-ch2
	stop3()
	if got := n.Watching(); got != 0 {
		t.Fatalf("Watching = %d, want 0", got)
	}
}

func TestCloseFiresWatches(t *testing.T) {
	n := New()
	ch, stop := n.Watch("x")
	defer stop()
	n.Close()
	<-ch
	late, stopLate := n.Watch("y")
	defer stopLate()
	<-late
}

func TestConcurrentUse(t *testing.T) {
	n := New()
	var wg sync.WaitGroup
	ids := []string{"a", "b", "c"}
	for g := range 8 {
		sig := []<-chan struct{}{n.Signal(store.OrchestrationWorkKind), n.Signal(store.ActivityWorkKind)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				id := ids[(g+i)%len(ids)]
				ch, stop := n.Watch(id)
				n.Changed(ids[i%len(ids)])
				n.Notify(store.WorkKind(i % 2))
				select {
				case <-ch:
				case <-sig[i%2]:
				default:
				}
				stop()
			}
		}()
	}
	wg.Wait()
	if got := n.Watching(); got != 0 {
		t.Fatalf("Watching = %d after all stops, want 0", got)
	}
}
