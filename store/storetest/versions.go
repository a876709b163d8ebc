package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

// hostileTags are tags a store must keep exactly: JSON and SQL syntax, escapes, non-ASCII text,
// an empty key and an empty value, and a value just under the bound.
func hostileTags() map[string]string {
	return map[string]string{
		"":                 "empty key",
		"empty":            "",
		`quote"key`:        `value with "quotes" and \backslashes\`,
		"sql'; DROP TABLE": "'); DELETE FROM instances; --",
		"json":             `{"nested":[1,2,3],"null":null}`,
		"null":             "null",
		"控制":               "ünïcödé ✓ 🚀",
		"line\nbreak":      "tab\there\r\n",
		"u+2028\u2028":     "\u2029\u0001\u001f",
		"big":              strings.Repeat("v", store.MaxTagsBytes/2),
	}
}

// hostileVersions are versions a store must keep exactly.
var hostileVersions = []string{"1.0.0", "", "v2-beta+build.7", `'"; --`, "版本 ✓", strings.Repeat("9", store.MaxKeyBytes)}

// wantVersionTags fails unless inst carries version and tags (nil and empty tags are the same).
func wantVersionTags(t *testing.T, what string, inst store.Instance, version string, tags map[string]string) {
	t.Helper()
	if inst.Version != version {
		t.Fatalf("%s: Version = %q, want %q", what, inst.Version, version)
	}
	if !maps.Equal(inst.Tags, tags) {
		t.Fatalf("%s: Tags = %q, want %q", what, inst.Tags, tags)
	}
	if len(inst.Tags) == 0 && inst.Tags != nil {
		t.Fatalf("%s: Tags = empty non-nil map, want nil", what)
	}
}

func (s suite) testVersionAndTags(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	tags := hostileTags()
	for i, version := range hostileVersions {
		id := "v" + string(rune('a'+i))
		inst := newInstance(id)
		inst.Version = version
		inst.Tags = tags
		if err := st.CreateInstance(ctx, inst, startMessage(id), store.ReuseNever); err != nil {
			t.Fatalf("CreateInstance(version %q): %v", version, err)
		}
		wantVersionTags(t, "GetInstance", mustGet(t, st, id), version, tags)
	}
	mustCreate(t, st, "plain")
	wantVersionTags(t, "GetInstance(no version, no tags)", mustGet(t, st, "plain"), "", nil)
	empty := newInstance("empty-tags")
	empty.Tags = map[string]string{}
	if err := st.CreateInstance(ctx, empty, startMessage("empty-tags"), store.ReuseNever); err != nil {
		t.Fatal(err)
	}
	wantVersionTags(t, "GetInstance(empty tags)", mustGet(t, st, "empty-tags"), "", nil)

	for _, without := range []bool{false, true} {
		all, _ := listAll(t, st, store.Query{IDPrefix: "v", WithoutPayloads: without})
		if len(all) != len(hostileVersions) {
			t.Fatalf("ListInstances(WithoutPayloads %v) = %d instances, want %d", without, len(all), len(hostileVersions))
		}
		for _, inst := range all {
			wantVersionTags(t, "ListInstances", inst, hostileVersions[inst.ID[1]-'a'], tags)
		}
	}
	w := claimID(t, st, "n", "va")
	wantVersionTags(t, "claimed instance", w.Instance, hostileVersions[0], tags)
	if size := w.Instance.Size(); size < len(hostileVersions[0])+store.TagsSize(tags) {
		t.Fatalf("Size() = %d, want at least the version and tags (%d bytes)", size, len(hostileVersions[0])+store.TagsSize(tags))
	}

	// A commit writes the version (continue-as-new may change it) and keeps the tags, whatever
	// the episode's instance says.
	e := consumeAll(w)
	e.ResetHistory = true
	e.Instance.ExecutionID = "exec-2"
	e.Instance.Version = "2.0"
	e.Instance.Tags = map[string]string{"ignored": "yes"}
	e.Messages = []store.Message{{InstanceID: "va", Data: []byte("next")}}
	mustCommit(t, st, e)
	wantVersionTags(t, "after a commit with a new version", mustGet(t, st, "va"), "2.0", tags)
	w = claimID(t, st, "n", "va")
	wantVersionTags(t, "claimed after the commit", w.Instance, "2.0", tags)
	e = consumeAll(w)
	e.Instance.Tags = nil
	e.Instance.Status = store.StatusCompleted
	mustCommit(t, st, e)
	wantVersionTags(t, "after a commit with no tags", mustGet(t, st, "va"), "2.0", tags)

	// Replacing the instance replaces both.
	repl := newInstance("va")
	repl.Version = "3.0"
	if err := st.CreateInstance(ctx, repl, startMessage("va"), store.ReuseIfFinished); err != nil {
		t.Fatalf("CreateInstance over a Completed instance: %v", err)
	}
	wantVersionTags(t, "replaced instance", mustGet(t, st, "va"), "3.0", nil)
	finish(t, st, "va", store.StatusCompleted)
	repl = newInstance("va")
	repl.Tags = map[string]string{"generation": "3"}
	if err := st.CreateInstance(ctx, repl, startMessage("va"), store.ReuseAlways); err != nil {
		t.Fatal(err)
	}
	wantVersionTags(t, "replaced again", mustGet(t, st, "va"), "", map[string]string{"generation": "3"})

	// Sub-orchestrations started by an episode keep theirs, also when they replace a finished
	// instance.
	finish(t, st, "vb", store.StatusCompleted)
	w = claimID(t, st, "n", "plain")
	child, again := newInstance("child"), newInstance("vb")
	child.ParentID, again.ParentID = "plain", "plain"
	child.Version, child.Tags = "child-1", map[string]string{"from": "parent", "": ""}
	again.Version = "again-1"
	e = consumeAll(w)
	e.Starts = []store.Start{{Instance: child, Message: startMessage("child")}, {Instance: again, Message: startMessage("vb")}}
	mustCommit(t, st, e)
	wantVersionTags(t, "started sub-orchestration", mustGet(t, st, "child"), "child-1", child.Tags)
	wantVersionTags(t, "sub-orchestration over a finished instance", mustGet(t, st, "vb"), "again-1", nil)
}

func (s suite) testInvalidVersionAndTags(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "ok")
	over := map[string]string{"a": strings.Repeat("x", store.MaxTagsBytes/2), "b": strings.Repeat("y", store.MaxTagsBytes/2)}
	cases := []struct {
		name    string
		version string
		tags    map[string]string
	}{
		{"version not UTF-8", "1.\xff", nil},
		{"version NUL", "1\x00", nil},
		{"version too long", strings.Repeat("1", store.MaxKeyBytes+1), nil},
		{"tag key not UTF-8", "", map[string]string{"k\xff": "v"}},
		{"tag key NUL", "", map[string]string{"k\x00": "v"}},
		{"tag value not UTF-8", "", map[string]string{"k": "\xe2\x82"}},
		{"tag value NUL", "", map[string]string{"k": "v\x00"}},
		{"tags too large", "", over},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst := newInstance("bad")
			inst.Version, inst.Tags = tc.version, tc.tags
			wantErr(t, "CreateInstance", st.CreateInstance(ctx, inst, startMessage("bad"), store.ReuseAlways), store.ErrInvalidArgument)
			if _, err := st.GetInstance(ctx, "bad"); err == nil {
				t.Fatal("a refused CreateInstance created the instance")
			}
			w := claimID(t, st, "n", "ok")
			e := consumeAll(w)
			e.Consumed = nil // keep the inbox, so that "ok" stays claimable
			child := newInstance("bad-child")
			child.Version, child.Tags = tc.version, tc.tags
			e.Starts = []store.Start{{Instance: child, Message: startMessage("bad-child")}}
			wantErr(t, "CommitEpisode(start)", st.CommitEpisode(ctx, e), store.ErrInvalidArgument)
			if tc.tags == nil {
				e = consumeAll(w)
				e.Consumed = nil
				e.Instance.Version = tc.version
				wantErr(t, "CommitEpisode(version)", st.CommitEpisode(ctx, e), store.ErrInvalidArgument)
			}
			// The lease still holds: nothing was written.
			mustCommit(t, st, store.Episode{Lease: w.Lease, Instance: w.Instance})
			if _, err := st.GetInstance(ctx, "bad-child"); err == nil {
				t.Fatal("a refused CommitEpisode started the sub-orchestration")
			}
		})
	}
	// At the bound exactly is fine.
	inst := newInstance("at-bound")
	inst.Tags = map[string]string{"a": strings.Repeat("x", store.MaxTagsBytes-1)}
	if err := st.CreateInstance(ctx, inst, startMessage("at-bound"), store.ReuseNever); err != nil {
		t.Fatalf("CreateInstance with tags of MaxTagsBytes: %v", err)
	}
	wantVersionTags(t, "tags at the bound", mustGet(t, st, "at-bound"), "", inst.Tags)
}

// testListByVersion checks Query.Versions: whole, case-sensitive matches of the stamped version
// (no prefix, no ordering), "" for the instances without one, several versions as an OR, ANDed
// with the other filters, across pages and in counts, following a version a commit changed.
func (s suite) testListByVersion(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	create := func(id, version string) {
		t.Helper()
		inst := newInstance(id)
		inst.Version = version
		if err := st.CreateInstance(ctx, inst, startMessage(id), store.ReuseNever); err != nil {
			t.Fatalf("CreateInstance(%q, version %q): %v", id, version, err)
		}
	}
	for i, version := range hostileVersions {
		create("h-"+string(rune('a'+i)), version)
	}
	create("one", "1.0")
	create("one-b", "1.0")
	create("one-long", "1.0.1")
	create("one-upper", "V1.0")
	create("one-lower", "v1.0")
	create("two", "2.0")
	create("none", "")
	finish(t, st, "one-b", store.StatusCompleted)

	list := func(q store.Query) []string {
		t.Helper()
		all, _ := listAll(t, st, q)
		got := ids(all)
		slices.Sort(got)
		return got
	}
	for _, tc := range []struct {
		name string
		q    store.Query
		want []string
	}{
		{"exact", store.Query{Versions: []string{"1.0"}}, []string{"one", "one-b"}},
		{"case-sensitive", store.Query{Versions: []string{"v1.0"}}, []string{"one-lower"}},
		{"not a prefix", store.Query{Versions: []string{"1"}}, nil},
		{"not a pattern", store.Query{Versions: []string{"1.%"}}, nil},
		{"several", store.Query{Versions: []string{"2.0", "1.0.1", "absent"}}, []string{"one-long", "two"}},
		{"duplicates", store.Query{Versions: []string{"2.0", "2.0"}}, []string{"two"}},
		{"none", store.Query{Versions: []string{""}}, []string{"h-b", "none"}},
		{"none or 2.0", store.Query{Versions: []string{"", "2.0"}}, []string{"h-b", "none", "two"}},
		{"with status", store.Query{Versions: []string{"1.0"}, Statuses: []store.Status{store.StatusPending}}, []string{"one"}},
		{"with name", store.Query{Versions: []string{"1.0"}, Name: "other"}, nil},
		{"with prefix", store.Query{Versions: []string{"1.0", "2.0"}, IDPrefix: "t"}, []string{"two"}},
		{"paged", store.Query{Versions: []string{"1.0", "1.0.1", "V1.0"}, PageSize: 1}, []string{"one", "one-b", "one-long", "one-upper"}},
		{"newest first", store.Query{Versions: []string{"1.0"}, NewestFirst: true, PageSize: 1, WithoutPayloads: true}, []string{"one", "one-b"}},
		{"entities have none", store.Query{Kind: store.KindEntity, Versions: []string{"1.0"}}, nil},
	} {
		if got := list(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListInstances(Versions %q) = %v, want %v", tc.name, tc.q.Versions, got, tc.want)
		}
	}
	// Each hostile version (SQL and JSON syntax, non-ASCII, the longest allowed) finds itself.
	for i, version := range hostileVersions {
		want := []string{"h-" + string(rune('a'+i))}
		if version == "" {
			want = []string{"h-b", "none"}
		}
		if got := list(store.Query{Versions: []string{version}}); !slices.Equal(got, want) {
			t.Errorf("ListInstances(Versions [%.40q]) = %v, want %v", version, got, want)
		}
	}
	// No filter, with a nil or an empty list.
	for _, versions := range [][]string{nil, {}} {
		if got := list(store.Query{Versions: versions}); len(got) != len(hostileVersions)+7 {
			t.Errorf("ListInstances(Versions %#v) = %d instances, want all %d", versions, len(got), len(hostileVersions)+7)
		}
	}

	counts, err := st.CountInstances(ctx, store.Query{Versions: []string{"1.0", "2.0"}})
	if err != nil || !maps.Equal(counts, map[store.Status]int{store.StatusPending: 2, store.StatusCompleted: 1}) {
		t.Fatalf("CountInstances(Versions 1.0, 2.0) = %v, %v; want Pending 2, Completed 1", counts, err)
	}
	counts, err = st.CountInstances(ctx, store.Query{Versions: []string{"absent"}})
	if err != nil || len(counts) != 0 {
		t.Fatalf("CountInstances(Versions absent) = %v, %v; want none", counts, err)
	}

	// A continue-as-new that stamps a new version moves the instance to it.
	w := claimID(t, st, "n", "two")
	e := consumeAll(w)
	e.ResetHistory = true
	e.Instance.ExecutionID = "exec-two-2"
	e.Instance.Version = "3.0"
	mustCommit(t, st, e)
	if got := list(store.Query{Versions: []string{"2.0"}}); len(got) != 0 {
		t.Errorf("after a commit to version 3.0, Versions [2.0] lists %v, want none", got)
	}
	if got := list(store.Query{Versions: []string{"3.0"}}); !slices.Equal(got, []string{"two"}) {
		t.Errorf("after a commit to version 3.0, Versions [3.0] lists %v, want [two]", got)
	}
}

// testInvalidVersionFilter checks that a version filter a store could not match as given is
// refused, by listings and counts alike, instead of matching nothing (or everything).
func (s suite) testInvalidVersionFilter(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	mustCreate(t, st, "ok")
	tooMany := make([]string, store.MaxQueryVersions+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("v", i)
	}
	for _, tc := range []struct {
		name     string
		versions []string
	}{
		{"not UTF-8", []string{"1.0", "1.\xff"}},
		{"NUL", []string{"1\x00"}},
		{"too long", []string{strings.Repeat("1", store.MaxKeyBytes+1)}},
		{"too many", tooMany},
	} {
		_, _, err := st.ListInstances(ctx, store.Query{Versions: tc.versions})
		wantErr(t, "ListInstances(Versions "+tc.name+")", err, store.ErrInvalidArgument)
		_, err = st.CountInstances(ctx, store.Query{Versions: tc.versions})
		wantErr(t, "CountInstances(Versions "+tc.name+")", err, store.ErrInvalidArgument)
	}
	// At the bounds exactly is fine.
	atBound := append(tooMany[:store.MaxQueryVersions-1:store.MaxQueryVersions-1], strings.Repeat("1", store.MaxKeyBytes))
	if _, _, err := st.ListInstances(ctx, store.Query{Versions: atBound}); err != nil {
		t.Fatalf("ListInstances(%d versions, one of MaxKeyBytes): %v", len(atBound), err)
	}
}
