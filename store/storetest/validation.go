package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// hostileIDs are instance IDs no store may take: each is refused with ErrInvalidArgument
// before anything is written or looked up.
var hostileIDs = []struct{ name, id string }{
	{"empty", ""},
	{"not UTF-8", "x-\xff"},
	{"truncated UTF-8", "x-\xe2\x82"},
	{"NUL", "x-\x00-y"},
	{"too long", strings.Repeat("a", store.MaxKeyBytes+1)},
}

func (s suite) testInvalidArguments(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "ok")
	for _, tc := range hostileIDs {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance(tc.id)
			wantErr(t, "CreateInstance", st.CreateInstance(ctx, inst, startMessage(tc.id), store.ReuseAlways), store.ErrInvalidArgument)
			_, err := st.GetInstance(ctx, tc.id)
			wantErr(t, "GetInstance", err, store.ErrInvalidArgument)
			_, err = st.History(ctx, tc.id)
			wantErr(t, "History", err, store.ErrInvalidArgument)
			wantErr(t, "SendMessage", st.SendMessage(ctx, store.Message{InstanceID: tc.id, Data: []byte("m")}), store.ErrInvalidArgument)
			wantErr(t, "PurgeInstance", st.PurgeInstance(ctx, tc.id), store.ErrInvalidArgument)
			if tc.id == "" {
				return // an empty prefix is no filter
			}
			_, _, err = st.ListInstances(ctx, store.Query{IDPrefix: tc.id})
			wantErr(t, "ListInstances(IDPrefix)", err, store.ErrInvalidArgument)
			_, err = st.CountInstances(ctx, store.Query{Name: tc.id})
			wantErr(t, "CountInstances(Name)", err, store.ErrInvalidArgument)
			_, _, err = st.ListInstances(ctx, store.Query{ContinuationToken: tc.id})
			wantErr(t, "ListInstances(ContinuationToken)", err, store.ErrInvalidToken)
		})
	}
	t.Run("sub-orchestration", func(t *testing.T) {
		w := claimID(t, st, "n", "ok")
		e := consumeAll(w)
		e.Starts = []store.Start{{Instance: newInstance("sub-\xff"), Message: startMessage("sub-\xff")}}
		wantErr(t, "CommitEpisode(start of a bad ID)", st.CommitEpisode(ctx, e), store.ErrInvalidArgument)
	})
	t.Run("names", func(t *testing.T) {
		for _, inst := range []store.Instance{
			{ID: "n1", Name: "orch\xff", ExecutionID: "e"},
			{ID: "n2", Name: "orch", ExecutionID: "e\x00"},
			{ID: "n3", Name: "orch", ExecutionID: "e", ParentID: "p\xff"},
			{ID: "n4", Name: "orch", ExecutionID: "e", CreatedAt: store.MaxTime().Add(time.Microsecond)},
		} {
			wantErr(t, "CreateInstance("+inst.ID+")", st.CreateInstance(ctx, inst, startMessage(inst.ID), store.ReuseNever), store.ErrInvalidArgument)
		}
	})
	t.Run("claimed names", func(t *testing.T) {
		// A name that fails store.CheckText could never match its work (SQLite's JSON would
		// carry invalid UTF-8 as U+FFFD): the claim is refused, not an empty answer.
		for _, name := range []string{"orch\xff", "orch\x00", strings.Repeat("o", store.MaxKeyBytes+1)} {
			names := store.Names{"ok", name}
			_, err := st.ClaimOrchestrations(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimOrchestrations", err, store.ErrInvalidArgument)
			_, err = st.ClaimActivities(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimActivities", err, store.ErrInvalidArgument)
			_, err = st.Unclaimed(ctx, names, nil)
			wantErr(t, "Unclaimed", err, store.ErrInvalidArgument)
			// The same name among those a set of every name excludes.
			names = store.AllNamesExcept("ok", name)
			_, err = st.ClaimOrchestrations(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimOrchestrations(AllNamesExcept)", err, store.ErrInvalidArgument)
			_, err = st.ClaimActivities(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimActivities(AllNamesExcept)", err, store.ErrInvalidArgument)
			_, err = st.Unclaimed(ctx, nil, names)
			wantErr(t, "Unclaimed(AllNamesExcept)", err, store.ErrInvalidArgument)
		}
	})
	t.Run("except mark out of place", func(t *testing.T) {
		// The mark of AllNamesExcept means "every name but" only in first position; anywhere
		// else it is a name no work can have, and the claim is refused.
		mark := store.AllNamesExcept()[0]
		for _, names := range []store.Names{
			{"ok", mark},
			append(store.AllNamesExcept("ok"), mark),
			store.AllNamesExcept(mark),
		} {
			_, err := st.ClaimOrchestrations(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimOrchestrations", err, store.ErrInvalidArgument)
			_, err = st.ClaimActivities(ctx, "n", names, 1, time.Minute)
			wantErr(t, "ClaimActivities", err, store.ErrInvalidArgument)
			_, err = st.Unclaimed(ctx, names, names)
			wantErr(t, "Unclaimed", err, store.ErrInvalidArgument)
		}
	})
	t.Run("token", func(t *testing.T) {
		for _, tok := range []string{"not base64 at all!", "\xff\xfe"} {
			_, _, err := st.ListInstances(ctx, store.Query{ContinuationToken: tok})
			wantErr(t, "ListInstances(token "+tok+")", err, store.ErrInvalidToken)
		}
	})
}

// outOfRange are bounds outside [store.MinTime, store.MaxTime], each once as a lower and once as
// an upper bound. 9999-01-01 overflowed SQLite's nanoseconds and matched everything.
var outOfRange = []time.Time{
	time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	store.MinTime().Add(-time.Nanosecond),
	store.MaxTime().Add(time.Nanosecond),
}

func (s suite) testTimeBounds(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	lo, hi := store.MinTime(), store.MaxTime()
	us := time.Microsecond
	created := map[string]time.Time{
		"min": lo, "min+1": lo.Add(us), "epoch": time.Unix(0, 1000).UTC(), "mid": time.Date(2024, 2, 29, 12, 0, 0, 123456000, time.UTC),
		"max-1": hi.Add(-us), "max": hi,
	}
	for id, at := range created {
		inst := newInstance(id)
		inst.CreatedAt = at
		if err := st.CreateInstance(ctx, inst, startMessage(id), store.ReuseNever); err != nil {
			t.Fatalf("CreateInstance(%q at %v): %v", id, at, err)
		}
		if got := mustGet(t, st, id).CreatedAt; !got.Equal(at) {
			t.Fatalf("instance %q created at %v reads back as %v", id, at, got)
		}
		finish(t, st, id, store.StatusCompleted)
	}
	within := func(from, to time.Time) []string {
		var out []string
		for id, at := range created {
			if (from.IsZero() || !at.Before(from)) && (to.IsZero() || !at.After(to)) {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	bounds := []struct {
		name     string
		from, to time.Time
	}{
		{"from=to=min", lo, lo},
		{"from=to=max", hi, hi},
		{"from min", lo, time.Time{}},
		{"to max", time.Time{}, hi},
		{"inside edges", lo.Add(us), hi.Add(-us)},
		{"sub-microsecond", lo.Add(time.Nanosecond), hi.Add(-time.Nanosecond)},
		{"exact mid", created["mid"], created["mid"]},
		{"nanosecond after mid", created["mid"].Add(time.Nanosecond), created["mid"].Add(time.Microsecond - time.Nanosecond)},
		{"empty", hi, lo},
	}
	for _, b := range bounds {
		want := within(b.from, b.to)
		q := store.Query{CreatedFrom: b.from, CreatedTo: b.to}
		all, _ := listAll(t, st, q)
		got := ids(all)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: ListInstances = %v, want %v", b.name, got, want)
		}
		q.NewestFirst = true
		all, _ = listAll(t, st, q)
		got = ids(all)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: ListInstances(newest first) = %v, want %v", b.name, got, want)
		}
		counts, err := st.CountInstances(ctx, q)
		if err != nil || counts[store.StatusCompleted] != len(want) {
			t.Errorf("%s: CountInstances = %v, %v; want %d Completed", b.name, counts, err, len(want))
		}
	}
	for _, at := range outOfRange {
		for _, q := range []store.Query{{CreatedFrom: at}, {CreatedTo: at}} {
			_, _, err := st.ListInstances(ctx, q)
			wantErr(t, "ListInstances("+at.String()+")", err, store.ErrInvalidArgument)
			_, err = st.CountInstances(ctx, q)
			wantErr(t, "CountInstances("+at.String()+")", err, store.ErrInvalidArgument)
			n, err := st.PurgeInstances(ctx, store.PurgeFilter{CreatedFrom: q.CreatedFrom, CreatedTo: q.CreatedTo})
			if n != 0 || !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("PurgeInstances(%v) = %d, %v; want 0, ErrInvalidArgument", at, n, err)
			}
		}
	}
	// Purges honour the same bounds: each takes exactly the instances the bounds select.
	for _, b := range []struct {
		from, to time.Time
		want     []string
	}{
		{lo, lo, []string{"min"}},
		{hi, hi, []string{"max"}},
		{created["mid"].Add(time.Nanosecond), hi.Add(-time.Nanosecond), []string{"max-1"}},
		{lo.Add(time.Nanosecond), created["mid"], []string{"epoch", "mid", "min+1"}},
	} {
		n, err := st.PurgeInstances(ctx, store.PurgeFilter{CreatedFrom: b.from, CreatedTo: b.to})
		if err != nil || n != len(b.want) {
			t.Fatalf("PurgeInstances(%v, %v) = %d, %v; want %d (%v)", b.from, b.to, n, err, len(b.want), b.want)
		}
		for _, id := range b.want {
			if _, err := st.GetInstance(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("after PurgeInstances(%v, %v): GetInstance(%q) = %v, want ErrNotFound", b.from, b.to, id, err)
			}
		}
	}
	all, _ := listAll(t, st, store.Query{})
	if got := ids(all); len(got) != 0 {
		t.Fatalf("left after the purges: %v, want none", got)
	}
}
