package entity

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
)

var now = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// builder makes inbox messages with growing IDs.
type builder struct{ id int64 }

func (b *builder) add(ev history.Event) Inbound {
	b.id++
	return Inbound{ID: b.id, Event: ev}
}

func signal(req, op string) history.Event {
	return history.Event{ID: -1, Type: history.EntityOperationSignaled, RequestID: req, Name: op}
}

func call(req, op, holder string) history.Event {
	return history.Event{ID: -1, Type: history.EntityOperationCalled, RequestID: req, Name: op,
		Parent: &history.Parent{InstanceID: holder, ExecutionID: holder + "-x"}}
}

func lockReq(section, holder string, pos int, set ...string) history.Event {
	return history.Event{ID: -1, Type: history.EntityLockRequested, RequestID: section, LockSet: set, Position: pos,
		Parent: &history.Parent{InstanceID: holder, ExecutionID: holder + "-x"}}
}

func unlock(section, holder string) history.Event {
	return history.Event{ID: -1, Type: history.EntityUnlockSent, RequestID: section,
		Parent: &history.Parent{InstanceID: holder, ExecutionID: holder + "-x"}}
}

func ops(p Plan) []string {
	var out []string
	for _, r := range p.Requests {
		out = append(out, r.Operation)
	}
	return out
}

func backlogOps(s State) []string {
	var out []string
	for _, ev := range s.Backlog {
		out = append(out, fmt.Sprintf("%s:%s", ev.Type, ev.Name+ev.RequestID))
	}
	return out
}

func TestPlanRunsSignalsInOrderAndDropsDuplicates(t *testing.T) {
	var b builder
	in := []Inbound{b.add(signal("r1", "a")), b.add(signal("r2", "b")), b.add(signal("r1", "a")), b.add(signal("r3", "c"))}
	p := NewPlan(State{}, in, Limits{}, now)
	if got := ops(p); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("ops = %v, want [a b c] (the second r1 is a duplicate)", got)
	}
	if !slices.Equal(p.Consumed, []int64{1, 2, 3, 4}) {
		t.Fatalf("consumed = %v, want all four (the duplicate too)", p.Consumed)
	}
	// The next batch remembers r2: delivered again, it is dropped.
	p2 := NewPlan(p.State, []Inbound{b.add(signal("r2", "b")), b.add(signal("r4", "d"))}, Limits{}, now)
	if got := ops(p2); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("ops of the next batch = %v, want [d]", got)
	}
}

func TestPlanLockChain(t *testing.T) {
	var b builder
	// Entity A is first of [A, B] for orchestration O.
	in := []Inbound{
		b.add(signal("s1", "before")),
		b.add(lockReq("cs", "O", 0, "@e@a", "@e@b")),
		b.add(signal("s2", "other")),         // from a client: waits behind the lock
		b.add(call("c1", "fromHolder", "O")), // from the holder: runs
		b.add(call("c2", "fromOther", "P")),  // from another orchestration: waits
	}
	p := NewPlan(State{}, in, Limits{}, now)
	if got := ops(p); !slices.Equal(got, []string{"before", "fromHolder"}) {
		t.Fatalf("ops = %v, want [before fromHolder]", got)
	}
	if p.State.Lock == nil || p.State.Lock.Holder != "O" || p.State.Lock.Section != "cs" || p.State.Lock.Execution != "O-x" {
		t.Fatalf("lock = %+v, want held by O-x for cs", p.State.Lock)
	}
	if len(p.Messages) != 1 || !p.Messages[0].ToEntity || p.Messages[0].To != "@e@b" || p.Messages[0].Event.Position != 1 {
		t.Fatalf("hand-off = %+v, want the request passed to @e@b at position 1", p.Messages)
	}
	if got := len(p.State.Backlog); got != 2 {
		t.Fatalf("backlog = %v, want the client signal and the other call", backlogOps(p.State))
	}
	if s := p.State.Summary(); s.LockedBy != "O" || s.Backlog != 2 {
		t.Fatalf("summary = %+v", s)
	}

	// B, the last of the set, grants the lock to O's execution.
	pb := NewPlan(State{}, []Inbound{{ID: 1, Event: p.Messages[0].Event}}, Limits{}, now)
	if len(pb.Messages) != 1 || pb.Messages[0].ToEntity || pb.Messages[0].To != "O" || pb.Messages[0].ToExecution != "O-x" ||
		pb.Messages[0].Event.Type != history.EntityLockGranted || pb.Messages[0].Event.RequestID != "cs" {
		t.Fatalf("grant = %+v, want EntityLockGranted cs to O at O-x", pb.Messages)
	}

	// The unlock frees A: the backlog runs, in order, before what came after the unlock.
	p2 := NewPlan(p.State, []Inbound{b.add(unlock("cs", "O")), b.add(signal("s3", "after"))}, Limits{}, now)
	if got := ops(p2); !slices.Equal(got, []string{"other", "fromOther", "after"}) {
		t.Fatalf("ops after unlock = %v, want [other fromOther after]", got)
	}
	if p2.State.Lock != nil || len(p2.State.Backlog) != 0 || p2.Continue {
		t.Fatalf("state after unlock = %+v, want free with no backlog", p2.State)
	}
}

func TestPlanQueuedLockRequestTakesTheLockInTurn(t *testing.T) {
	var b builder
	p := NewPlan(State{}, []Inbound{
		b.add(lockReq("cs1", "O", 0, "@e@a")),
		b.add(lockReq("cs2", "P", 0, "@e@a")),
		b.add(signal("s1", "afterP")),
	}, Limits{}, now)
	if p.State.Lock.Section != "cs1" || len(p.State.Backlog) != 2 {
		t.Fatalf("state = %+v, want cs1 holding and two waiting", p.State)
	}
	p2 := NewPlan(p.State, []Inbound{b.add(unlock("cs1", "O"))}, Limits{}, now)
	if p2.State.Lock == nil || p2.State.Lock.Section != "cs2" {
		t.Fatalf("lock = %+v, want cs2 next", p2.State.Lock)
	}
	if len(ops(p2)) != 0 || len(p2.State.Backlog) != 1 {
		t.Fatalf("ops %v backlog %v: the signal after P's request waits for P", ops(p2), backlogOps(p2.State))
	}
	if len(p2.Messages) != 1 || p2.Messages[0].To != "P" {
		t.Fatalf("messages = %+v, want the grant to P", p2.Messages)
	}
}

func TestPlanUnlockBeforeRequestDropsTheRequest(t *testing.T) {
	var b builder
	// The holder ended (its unlock came first, from the orchestration) while its request was on
	// its way along the set from another entity.
	p := NewPlan(State{}, []Inbound{b.add(unlock("cs", "O"))}, Limits{}, now)
	p2 := NewPlan(p.State, []Inbound{b.add(lockReq("cs", "O", 1, "@e@a", "@e@b"))}, Limits{}, now)
	if p2.State.Lock != nil || len(p2.Messages) != 0 {
		t.Fatalf("state %+v messages %+v: a request of a section given up must not lock", p2.State, p2.Messages)
	}
}

func TestPlanUnlockDropsAQueuedRequest(t *testing.T) {
	var b builder
	p := NewPlan(State{}, []Inbound{b.add(lockReq("cs1", "O", 0, "@e@a")), b.add(lockReq("cs2", "P", 0, "@e@a"))}, Limits{}, now)
	p2 := NewPlan(p.State, []Inbound{b.add(unlock("cs2", "P"))}, Limits{}, now)
	if p2.State.Lock.Section != "cs1" {
		t.Fatalf("state = %+v, want cs1 still holding", p2.State)
	}
	// An unlock from someone who is not the holder leaves the lock alone.
	p3 := NewPlan(p2.State, []Inbound{b.add(unlock("cs1", "Q"))}, Limits{}, now)
	if p3.State.Lock == nil {
		t.Fatal("a forged unlock released the lock")
	}
	// When cs1 ends, P's request, given up while it waited, is dropped: the entity is free.
	p4 := NewPlan(p3.State, []Inbound{b.add(unlock("cs1", "O"))}, Limits{}, now)
	if p4.State.Lock != nil || len(p4.State.Backlog) != 0 || len(p4.Messages) != 0 {
		t.Fatalf("state %+v messages %+v: the given-up request must not lock", p4.State, p4.Messages)
	}
}

// TestChunksRoundTrip: a history written batch by batch with EncodeChange decodes to the state
// each plan computed, across new bases.
func TestChunksRoundTrip(t *testing.T) {
	var b builder
	var chunks [][]byte
	s := State{}
	for i := range 3 * MaxChunks {
		var in []Inbound
		switch i % 4 {
		case 0:
			in = append(in, b.add(lockReq(fmt.Sprint("cs", i), "O", 0, "@e@a")))
		case 1, 2:
			in = append(in, b.add(signal(fmt.Sprint("s", i), "op")), b.add(call(fmt.Sprint("c", i), "op", "O")))
		case 3:
			in = append(in, b.add(unlock(fmt.Sprint("cs", i-3), "O")), b.add(unlock("other", "Z")))
		}
		p := NewPlan(s, in, Limits{Operations: 1}, now)
		data, reset, err := p.EncodeChange(len(chunks))
		if err != nil {
			t.Fatal(err)
		}
		if reset {
			chunks = nil
		}
		chunks = append(chunks, data)
		if len(chunks) > MaxChunks {
			t.Fatalf("%d chunks, want at most %d", len(chunks), MaxChunks)
		}
		got, err := Decode(chunks)
		if err != nil {
			t.Fatal(err)
		}
		want := p.State
		if fmt.Sprint(got.Lock, backlogOps(got), got.Recent, got.Released) != fmt.Sprint(want.Lock, backlogOps(want), want.Recent, want.Released) {
			t.Fatalf("batch %d: decoded %+v, want %+v", i, got, want)
		}
		s = got
	}
}

func TestPlanLimits(t *testing.T) {
	var b builder
	in := []Inbound{b.add(signal("1", "a")), b.add(signal("2", "b")), b.add(signal("3", "c"))}
	p := NewPlan(State{}, in, Limits{Operations: 2}, now)
	if got := ops(p); !slices.Equal(got, []string{"a", "b"}) || !slices.Equal(p.Consumed, []int64{1, 2}) {
		t.Fatalf("ops %v consumed %v, want two of three, the third left in the inbox", got, p.Consumed)
	}
	if p.Continue {
		t.Fatal("Continue set although the rest is in the inbox, which brings the entity back")
	}

	// A backlog cut by the limit stays at the front, and the entity reminds itself.
	s := State{Backlog: []history.Event{signal("b1", "x"), signal("b2", "y"), signal("b3", "z")}}
	p2 := NewPlan(s, []Inbound{b.add(signal("4", "d"))}, Limits{Operations: 2}, now)
	if got := ops(p2); !slices.Equal(got, []string{"x", "y"}) || len(p2.Consumed) != 0 {
		t.Fatalf("ops %v consumed %v", got, p2.Consumed)
	}
	if got := backlogOps(p2.State); len(got) != 1 || p2.State.Backlog[0].Name != "z" || !p2.Continue {
		t.Fatalf("backlog %v continue %v, want [z] and a reminder", got, p2.Continue)
	}

	// A locked entity takes in at most Messages messages.
	p3 := NewPlan(State{Lock: &Lock{Holder: "O", Section: "cs"}}, []Inbound{b.add(signal("5", "e")), b.add(signal("6", "f"))},
		Limits{Operations: 10, Messages: 1}, now)
	if len(p3.Consumed) != 1 || len(p3.State.Backlog) != 1 {
		t.Fatalf("consumed %v backlog %v, want one message taken in", p3.Consumed, backlogOps(p3.State))
	}
}

func TestPlanRecentIsBounded(t *testing.T) {
	var b builder
	var in []Inbound
	for i := range RecentLimit + 10 {
		in = append(in, b.add(signal(fmt.Sprint(i), "op")))
	}
	p := NewPlan(State{}, in, Limits{}, now)
	if len(p.State.Recent) != RecentLimit || p.State.Recent[0].RequestID != "10" {
		t.Fatalf("recent holds %d, first %q; want the last %d", len(p.State.Recent), p.State.Recent[0].RequestID, RecentLimit)
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := State{Lock: &Lock{Holder: "O", Execution: "x", Section: "cs"}, Backlog: []history.Event{signal("1", "a")},
		Recent: []Seen{{Type: history.EntityOperationSignaled, RequestID: "1"}}}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode([][]byte{data})
	if got.Lock == nil {
		t.Fatalf("decoded %+v", got)
	}
	if err != nil || got.Lock.Section != "cs" || len(got.Backlog) != 1 || len(got.Recent) != 1 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if _, err := Decode([][]byte{[]byte("{not json")}); err == nil {
		t.Fatal("a corrupt state decoded")
	}
	if sum := DecodeSummary(EncodeSummary(s.Summary())); sum.LockedBy != "O" || sum.Backlog != 1 {
		t.Fatalf("summary round trip = %+v", sum)
	}
	if EncodeSummary(Summary{}) != nil || DecodeSummary([]byte("garbage")) != (Summary{}) {
		t.Fatal("empty or bad summaries")
	}
}

// TestDuplicatesInLargeBatches: the duplicate test that hashes (large batches) drops what the
// scanning one (small batches) drops: repeats of recent messages and repeats within the batch.
func TestDuplicatesInLargeBatches(t *testing.T) {
	var b builder
	var s State
	for i := range RecentLimit {
		s.Recent = append(s.Recent, Seen{Type: history.EntityOperationSignaled, RequestID: fmt.Sprint("old", i)})
	}
	var in []Inbound
	for i := range 100 {
		in = append(in, b.add(signal(fmt.Sprint("new", i), "op")))
	}
	in = append(in, b.add(signal("old5", "op")), b.add(signal("new7", "op")))
	p := NewPlan(s, in, Limits{}, now)
	if len(p.Requests) != 100 || len(p.Consumed) != 102 {
		t.Fatalf("%d requests of %d consumed, want 100 of 102", len(p.Requests), len(p.Consumed))
	}
	if len(p.State.Recent) != RecentLimit || p.State.Recent[RecentLimit-1].RequestID != "new99" || p.State.Recent[0].RequestID != "old100" {
		t.Fatalf("recent window from %s to %s, want old100 to new99", p.State.Recent[0].RequestID, p.State.Recent[RecentLimit-1].RequestID)
	}
	if got := window([]int{1, 2}, nil); len(got) != 2 {
		t.Fatalf("window without additions = %v", got)
	}
	big := make([]int, RecentLimit+5)
	for i := range big {
		big[i] = i
	}
	if got := window([]int{-1}, big); len(got) != RecentLimit || got[0] != 5 {
		t.Fatalf("window of a long addition starts at %d with %d, want 5 with %d", got[0], len(got), RecentLimit)
	}
}
