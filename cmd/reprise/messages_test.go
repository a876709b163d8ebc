package main

import (
	"strings"
	"testing"
)

// TestErrorMessages pins the exact text of the errors people meet most: each says once what went
// wrong and what to do, without the host's internals.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	h.startSequence(t, "done")
	h.startForever(t, "run")

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"instances", "terminate", "done"}, exitState,
			"reprise: cannot terminate done (410 Gone): The orchestration instance 'done' has finished; it takes no more events or commands."},
		{[]string{"instances", "raise", "done", "Approved", `"alice"`}, exitState,
			`reprise: cannot raise event "Approved" on done (410 Gone): The orchestration instance 'done' has finished; it takes no more events or commands.`},
		{[]string{"instances", "purge", "run"}, exitState,
			"reprise: cannot purge run (409 Conflict): The orchestration instance 'run' is still active; terminate it first."},
		{[]string{"start-new", "forever", "--id", "run"}, exitState,
			"reprise: cannot start forever as run (409 Conflict): An orchestration instance with the ID 'run' is already active: " +
				"wait for it to finish or terminate it, or start the orchestration with another instance ID."},
		{[]string{"instances", "rewind", "run"}, exitState,
			"reprise: cannot rewind run (412 Precondition Failed): The orchestration instance 'run' has not failed; only failed instances can be rewound."},
		{[]string{"instances", "rewind", "done"}, exitState,
			"reprise: cannot rewind done (410 Gone): The orchestration instance 'done' has not failed; only failed instances can be rewound."},
		{[]string{"start-new", "nope"}, exitHostError,
			"reprise: cannot start nope (400 Bad Request): The function 'nope' doesn't exist or is not an orchestrator function registered with this app."},
		{[]string{"instances", "show", "nope"}, exitNotFound,
			`reprise: instance "nope" not found in the host's default task hub`},
		{[]string{"instances", "list", "--order", "sideways"}, exitUsage,
			`reprise: unknown --order "sideways": use newest or oldest`},
	} {
		r := h.cli(t, c.args...)
		line, _, _ := strings.Cut(r.stderr, "\n")
		if r.code != c.code || line != c.want {
			t.Errorf("reprise %s: exit %d, stderr\n%s\nwant exit %d and\n%s", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
}

// TestListOrder: the newest instances come first unless --order oldest, on every page.
func TestListOrder(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	for _, id := range []string{"o1", "o2", "o3"} {
		h.startSequence(t, id) // one after the other: creation times increase
	}
	column := func(out string) string {
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			ids = append(ids, strings.Fields(line)[0])
		}
		return strings.Join(ids, " ")
	}
	if got := column(h.mustSucceed(t, "instances", "list")); got != "o3 o2 o1" {
		t.Errorf("default order: %s, want o3 o2 o1", got)
	}
	if got := column(h.mustSucceed(t, "instances", "list", "--order", "oldest")); got != "o1 o2 o3" {
		t.Errorf("--order oldest: %s, want o1 o2 o3", got)
	}
	if got := column(h.mustSucceed(t, "instances", "list", "--top", "1", "--all")); got != "o3 o2 o1" {
		t.Errorf("newest first in pages of 1: %s, want o3 o2 o1", got)
	}
}
