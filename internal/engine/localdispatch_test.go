package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/internal/storefault"
	"github.com/reprise-dev/reprise/store"
)

// claimCounter counts the activity tasks handed out by ClaimActivities and by commits that
// leased them (Episode.LeaseTasks).
type claimCounter struct {
	store.Store
	claimed, leased atomic.Int64
}

func (c *claimCounter) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	w, err := c.Store.ClaimActivities(ctx, owner, names, max, leaseFor)
	c.claimed.Add(int64(len(w)))
	return w, err
}

func (c *claimCounter) CommitEpisode(ctx context.Context, e store.Episode) error {
	err := c.Store.CommitEpisode(ctx, e)
	if err == nil && e.LeaseTasks != nil {
		c.leased.Add(int64(len(e.LeaseTasks.Leased)))
	}
	return err
}

// TestLocalDispatch: with free activity slots, every task an episode schedules is committed
// leased to the engine and run without a claim; with local dispatch off, every task is claimed.
// Either way each activity runs once and each result is applied once.
func TestLocalDispatch(t *testing.T) {
	const n = 20
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", off), func(t *testing.T) {
			sq := openSQLite(t)
			var txs, writes atomic.Int64
			sq.ObserveTransactions(func(tx store.Transaction) { txs.Add(1); writes.Add(int64(tx.Writes)) })
			cc := &claimCounter{Store: sq}
			var r runs
			newEngine(t, engine.Options{Store: cc, Registry: chainRegistry(&r), DisableLocalDispatch: off})
			// One instance alone first, for the write transactions of a sequential step (a
			// figure for docs/benchmarks.md, not asserted: empty claims depend on wake-ups).
			before := txs.Load()
			runChains(t, cc, "alone", 1, 30*time.Second)
			t.Logf("one chain of 3 sequential activities alone: %d write transactions", txs.Load()-before)
			before, beforeWrites := txs.Load(), writes.Load()
			runChains(t, cc, "l", n, 30*time.Second)
			t.Logf("%d chains at once: %.1f write transactions (%.1f writes) per chain", n,
				float64(txs.Load()-before)/n, float64(writes.Load()-beforeWrites)/n)
			for i := range n {
				for task := range int32(3) {
					if got := r.of(fmt.Sprintf("l%03d", i), task); got != 1 {
						t.Fatalf("activity %d of l%03d ran %d times, want once", task, i, got)
					}
				}
			}
			claimed, leased := cc.claimed.Load(), cc.leased.Load()
			if off && (claimed != 3*(n+1) || leased != 0) {
				t.Fatalf("without local dispatch, %d tasks were claimed and %d leased by commits, want %d and 0", claimed, leased, 3*(n+1))
			}
			if !off && (claimed != 0 || leased != 3*(n+1)) {
				t.Fatalf("with local dispatch, %d tasks were claimed and %d leased by commits, want 0 and %d", claimed, leased, 3*(n+1))
			}
		})
	}
}

// TestLocalDispatchLostReply: a commit that leased its tasks is applied but its reply is lost,
// so the engine never runs them: they are claimed once their lease expires (here by the same
// engine; by any host as well), and each runs and is applied once.
func TestLocalDispatchLostReply(t *testing.T) {
	fs := storefault.Wrap(openSQLite(t))
	cc := &claimCounter{Store: fs}
	// The first commit of each instance (the one scheduling its first task) is applied, and
	// the engine is told it failed.
	seen := map[string]bool{}
	var mu sync.Mutex
	fs.Fail(storefault.Fault{Method: "CommitEpisode", After: true, Pick: func(c storefault.Call) bool {
		mu.Lock()
		defer mu.Unlock()
		first := !seen[c.InstanceID]
		seen[c.InstanceID] = true
		return first
	}})
	var r runs
	newEngine(t, engine.Options{Store: cc, Registry: chainRegistry(&r), LeaseDuration: 500 * time.Millisecond})
	const n = 5
	runChains(t, cc, "r", n, 30*time.Second)
	if got := fs.Failed("CommitEpisode"); got != n {
		t.Fatalf("%d commits lost their reply, want %d", got, n)
	}
	// The first task of each instance was leased by the commit whose reply was lost: nobody ran
	// it until its lease expired and it was claimed.
	if claimed := cc.claimed.Load(); claimed != n {
		t.Fatalf("%d tasks were claimed, want the %d whose commit reply was lost", claimed, n)
	}
	for i := range n {
		for task := range int32(3) {
			if got := r.of(fmt.Sprintf("r%03d", i), task); got != 1 {
				t.Fatalf("activity %d of r%03d ran %d times, want once", task, i, got)
			}
		}
	}
}

// dead is a store that stops working for its host at a moment of the test's choosing, as for
// a host that crashed: no claims, no renewals, no releases, nothing recorded.
type dead struct {
	store.Store
	is   atomic.Bool
	mu   sync.Mutex
	late []error // of the completions tried once dead
}

func (d *dead) ClaimOrchestrations(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	if d.is.Load() {
		return nil, nil
	}
	return d.Store.ClaimOrchestrations(ctx, owner, names, max, leaseFor)
}

func (d *dead) ClaimActivities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.ActivityWork, error) {
	if d.is.Load() {
		return nil, nil
	}
	return d.Store.ClaimActivities(ctx, owner, names, max, leaseFor)
}

func (d *dead) RenewLeases(ctx context.Context, owner string, claims []store.Claim, leaseFor time.Duration) error {
	if d.is.Load() {
		return store.ErrClosed
	}
	return d.Store.RenewLeases(ctx, owner, claims, leaseFor)
}

func (d *dead) ReleaseLeases(ctx context.Context, owner string) error {
	if d.is.Load() {
		return store.ErrClosed
	}
	return d.Store.ReleaseLeases(ctx, owner)
}

func (d *dead) CommitEpisode(ctx context.Context, e store.Episode) error {
	if d.is.Load() {
		return store.ErrClosed
	}
	return d.Store.CommitEpisode(ctx, e)
}

// CompleteActivity passes through, dead or not (a result that was on its way), and keeps the
// outcome of the calls made once dead.
func (d *dead) CompleteActivity(ctx context.Context, taskID int64, lease store.Lease, result store.Message) error {
	err := d.Store.CompleteActivity(ctx, taskID, lease, result)
	if d.is.Load() {
		d.mu.Lock()
		d.late = append(d.late, err)
		d.mu.Unlock()
	}
	return err
}

// TestLocalDispatchHostDies: host A commits tasks leased to itself and dies before their results
// are recorded (it stops renewing and cannot release: its store is gone, as in a crash); host B
// runs them once their lease expires, and A's late results are refused.
func TestLocalDispatchHostDies(t *testing.T) {
	st := openSQLite(t)
	cc := &claimCounter{Store: st}
	dA := &dead{Store: cc}
	var ranA, ranB runs
	release := make(chan struct{})
	startedA := make(chan struct{}, 16)
	regA := chainRegistry(&ranA)
	incA := regA.activities["inc"]
	regA.activities["inc"] = func(ctx context.Context, in []byte) ([]byte, error) {
		startedA <- struct{}{}
		<-release // A is dead: its activity never gets to record anything in time
		return incA(ctx, in)
	}
	const lease = 300 * time.Millisecond
	a := engine.New(engine.Options{Store: dA, Registry: regA, LeaseDuration: lease, PollInterval: 50 * time.Millisecond})
	a.Start()
	start(t, st, "chain", "d", 0)
	<-startedA
	dA.is.Store(true) // A dies
	if claimed, leased := cc.claimed.Load(), cc.leased.Load(); claimed != 0 || leased != 1 {
		t.Fatalf("A claimed %d tasks and committed %d leased, want its first task committed leased", claimed, leased)
	}
	newEngine(t, engine.Options{Store: st, Registry: chainRegistry(&ranB), LeaseDuration: lease})
	inst := waitDone(t, st, "d", 30*time.Second)
	if inst.Status != store.StatusCompleted || string(inst.Output) != "3" {
		t.Fatalf("d is %s with output %s, want Completed with 3", inst.Status, inst.Output)
	}
	checkOnce(t, st, "d")
	if got := ranB.of("d", 0); got != 1 {
		t.Fatalf("host B ran the first activity %d times, want once after A's lease expired", got)
	}
	// A's result, arriving now under the lease of its commit, is refused.
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Shutdown(ctx)
	if got := ranA.of("d", 0); got != 1 {
		t.Fatalf("host A ran the first activity %d times, want once", got)
	}
	dA.mu.Lock()
	late := dA.late
	dA.mu.Unlock()
	if len(late) == 0 || !errors.Is(late[0], store.ErrLeaseLost) {
		t.Fatalf("A's late completions returned %v, want ErrLeaseLost", late)
	}
	checkOnce(t, st, "d")
}

// TestLocalDispatchLeaseRenewed: an activity that runs for many lease durations keeps its
// commit-time lease through renewal: another host never takes it.
func TestLocalDispatchLeaseRenewed(t *testing.T) {
	st := openSQLite(t)
	const lease = 200 * time.Millisecond
	var r runs
	slow := chainRegistry(&r)
	inc := slow.activities["inc"]
	slow.activities["inc"] = func(ctx context.Context, in []byte) ([]byte, error) {
		time.Sleep(5 * lease) // the work outlasts its lease several times over
		return inc(ctx, in)
	}
	newEngine(t, engine.Options{Store: st, Registry: slow, LeaseDuration: lease})
	other := chainRegistry(&r)
	other.orchestrators = nil
	newEngine(t, engine.Options{Store: st, Registry: other, LeaseDuration: lease})
	start(t, st, "chain", "s", 0)
	if inst := waitDone(t, st, "s", 30*time.Second); inst.Status != store.StatusCompleted || string(inst.Output) != "3" {
		t.Fatalf("s is %s with output %s, want Completed with 3", inst.Status, inst.Output)
	}
	for task := range int32(3) {
		if got := r.of("s", task); got != 1 {
			t.Fatalf("activity %d ran %d times, want once: its lease was not renewed", task, got)
		}
	}
}

// fan schedules three "act" calls at once and returns when all are done.
func fan(c *replay.Context) ([]byte, error) {
	var tasks []*replay.Task
	for i := range 3 {
		tasks = append(tasks, c.CallActivity("act", "", []byte(fmt.Sprint(i)), nil))
	}
	for _, task := range tasks {
		if _, err := task.Await(); err != nil {
			return nil, err
		}
	}
	return []byte("true"), nil
}

// TestLocalDispatchOnlyFreeSlotsAndOwnNames: an engine leases only as many tasks as it has free
// activity slots, and only tasks of activities it registered: the others are left for hosts
// that are idle or that run them.
func TestLocalDispatchOnlyFreeSlotsAndOwnNames(t *testing.T) {
	st := openSQLite(t)
	var started atomic.Int32
	allStarted := make(chan struct{})
	act := func(ctx context.Context, in []byte) ([]byte, error) {
		if started.Add(1) == 3 {
			close(allStarted)
		}
		select { // all three run at once, or the test fails: none may wait for a busy host
		case <-allStarted:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return in, nil
	}
	// A runs the orchestrator with one activity slot; B is idle with ten.
	const lease = time.Minute // a task leased wrongly would wait for this long
	newEngine(t, engine.Options{Store: st, LeaseDuration: lease, MaxConcurrentActivities: 1, Registry: registry{
		orchestrators: map[string]replay.Func{"fan": fan, "remote": func(c *replay.Context) ([]byte, error) {
			return c.CallActivity("elsewhere", "", []byte("1"), nil).Await()
		}},
		activities: map[string]engine.ActivityFunc{"act": act},
	}})
	newEngine(t, engine.Options{Store: st, LeaseDuration: lease, MaxConcurrentActivities: 10, Registry: registry{
		activities: map[string]engine.ActivityFunc{"act": act, "elsewhere": func(_ context.Context, in []byte) ([]byte, error) {
			return json.Marshal("ran elsewhere")
		}},
	}})
	start(t, st, "fan", "f", nil)
	start(t, st, "remote", "e", nil)
	for id, want := range map[string]string{"f": "true", "e": `"ran elsewhere"`} {
		if inst := waitDone(t, st, id, 20*time.Second); inst.Status != store.StatusCompleted || string(inst.Output) != want {
			t.Fatalf("%s is %s with output %s, want Completed with %s", id, inst.Status, inst.Output, want)
		}
		checkOnce(t, st, id)
	}
}
