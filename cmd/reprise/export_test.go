package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
)

func TestExport(t *testing.T) {
	t.Parallel()
	h := startHost(t)
	ctx := testCtx(t)
	c := h.app.Client()

	waiting := []string{"order 42 %25+é", "order-43", ".hidden"}
	for _, id := range waiting {
		if _, err := approval.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitForStart(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	h.startSequence(t, "done-1")
	h.startForever(t, "forever-1")

	// One instance to stdout: the document the client exports, and one that replays.
	out := h.mustSucceed(t, "instances", "export", waiting[0])
	want, err := c.ExportHistory(ctx, waiting[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != strings.TrimSpace(string(want)) {
		t.Errorf("export differs from Client.ExportHistory:\n%s\nwant\n%s", out, want)
	}
	if err := reprise.ReplayHistory(approval, []byte(out)); err != nil {
		t.Errorf("the exported history does not replay: %v", err)
	}
	if err := reprise.ReplayHistory(forever, []byte(out)); !errors.Is(err, reprise.ErrNonDeterminism) {
		t.Errorf("another orchestrator replayed it: %v, want non-determinism", err)
	}

	// To a file.
	file := filepath.Join(t.TempDir(), "one.json")
	if got := h.mustSucceed(t, "instances", "export", "done-1", "--out", file); !strings.Contains(got, "exported done-1 to "+file) {
		t.Errorf("got %q", got)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := reprise.ReplayHistory(helloSequence, data); err != nil {
		t.Errorf("the completed instance's history does not replay: %v", err)
	}

	// By filter, into a directory: by default the instances that may still replay (not done-1),
	// here those of one orchestrator.
	dir := filepath.Join(t.TempDir(), "histories", "approval")
	got := h.mustSucceed(t, "instances", "export", "--dir", dir, "--name", "APPROVAL")
	if !strings.Contains(got, "exported 3 instances to "+dir) {
		t.Errorf("summary missing:\n%s", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := reprise.ReplayHistory(approval, data); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	wantNames := []string{"%2Ehidden.json", "order%2042%20%2525%2B%C3%A9.json", "order-43.json"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("files %q, want %q", names, wantNames)
	}

	// Every name, explicit statuses.
	all := t.TempDir()
	got = h.mustSucceed(t, "instances", "export", "--dir", all, "--status", "Completed,Running", "--prefix", "")
	if !strings.Contains(got, "exported 5 instances") {
		t.Errorf("summary:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(all, "done-1.json")); err != nil {
		t.Errorf("the completed instance asked for was not exported: %v", err)
	}
	got = h.mustSucceed(t, "instances", "export", "--dir", t.TempDir(), "--name", "no_such_orchestrator")
	if !strings.Contains(got, "exported 0 instances") {
		t.Errorf("summary:\n%s", got)
	}

	h.wantExit(t, exitNotFound, []string{`instance "nope" not found`}, "instances", "export", "nope")
	h.wantExit(t, exitUsage, []string{"exactly one instance ID"}, "instances", "export")
	h.wantExit(t, exitUsage, []string{"select instances for --dir"}, "instances", "export", "order-43", "--name", "approval")
	h.wantExit(t, exitUsage, []string{"takes no instance IDs"}, "instances", "export", "order-43", "--dir", dir)
	h.wantExit(t, exitUsage, []string{"--out is for one instance ID"}, "instances", "export", "--dir", dir, "--out", file)
	h.wantExit(t, exitUsage, []string{"unknown"}, "instances", "export", "--dir", dir, "--status", "Sleeping")
	h.wantExit(t, exitUsage, []string{"not valid UTF-8"}, "instances", "export", "--dir", dir, "--name", "bad\xff")
	r := runCLI(t, map[string]string{"REPRISE_URL": h.url, "REPRISE_KEY": "wrong"}, "instances", "export", "order-43")
	checkExit(t, r, exitUnreachable, []string{"refused the key"}, []string{"instances", "export", "order-43"})
}

func TestExportFileName(t *testing.T) {
	for id, want := range map[string]string{
		"order-42":  "order-42.json",
		"a.b_c":     "a.b_c.json",
		".":         "%2E.json",
		"..x":       "%2E.x.json",
		"a/b\\c:d":  "a%2Fb%5Cc%3Ad.json",
		"Ünïcode 1": "%C3%9Cn%C3%AFcode%201.json",
		"%41":       "%2541.json", // the escape character itself, so names map back to one ID
	} {
		if got := exportFileName(id); got != want {
			t.Errorf("exportFileName(%q) = %q, want %q", id, got, want)
		}
	}
}
