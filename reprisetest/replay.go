package reprisetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
)

// CheckReplay replays recorded histories against the current code of an orchestrator and fails
// the test for each one the code no longer matches, naming the file and, from the
// non-determinism error, the call the history recorded and the call the code made. Run it in CI
// on histories exported from production (`reprise instances export`, Client.ExportHistory): a
// change that would break the instances running there fails before it is deployed.
//
// Each of paths is a history file, a directory (its *.json files) or a glob pattern
// (filepath.Match syntax); one that selects no file fails the test, so that a moved directory
// does not pass silently. Every file is checked, and every failure reported with t.Errorf; no
// store, activity or clock is involved, so the check is fast and runs in parallel tests. A
// history recorded for another orchestrator (by name) is a failure too: keep each
// orchestrator's histories in a directory of its own.
//
// To keep a history that must fail (the proof that a change needs ctx.IsPatched), replay it
// with reprise.ReplayHistory and expect reprise.ErrNonDeterminism.
func CheckReplay(t testing.TB, orchestrator reprise.Definition, paths ...string) {
	t.Helper()
	if len(paths) == 0 {
		t.Errorf("reprisetest.CheckReplay: no history files given; pass files, directories or glob patterns")
		return
	}
	var files []string
	for _, p := range paths {
		found, err := historyFiles(p)
		if err != nil {
			t.Errorf("reprisetest.CheckReplay: %v", err)
			continue
		}
		for _, f := range found {
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	named, _ := orchestrator.(interface{ Name() string })
	for _, f := range files {
		if err := replayFile(orchestrator, named, f); err != nil {
			t.Errorf("reprisetest.CheckReplay: %s: %v", f, err)
		}
	}
}

// historyFiles returns the files a path of CheckReplay selects, sorted.
func historyFiles(p string) ([]string, error) {
	if info, err := os.Stat(p); err == nil {
		if !info.IsDir() {
			return []string{p}, nil
		}
		found, err := filepath.Glob(filepath.Join(globEscape(p), "*.json"))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("directory %s holds no history (*.json) files", p)
		}
		return found, nil
	}
	found, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("%q is not a file, a directory or a valid glob pattern: %v", p, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s selects no file (not found, or a pattern that matches nothing)", p)
	}
	sort.Strings(found)
	var files []string
	for _, f := range found {
		if info, err := os.Stat(f); err == nil && !info.IsDir() {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s selects only directories; select the history files (dir/*.json) or name the directory", p)
	}
	return files, nil
}

// globEscape escapes the pattern characters of a directory's name, so that its files are
// found whatever it is called.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) && filepath.Separator != '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// replayFile replays one history file; named, when not nil, names the orchestrator.
func replayFile(orchestrator reprise.Definition, named interface{ Name() string }, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var head []struct {
		Type       int    `json:"type"`
		Name       string `json:"name"`
		InstanceID string `json:"instanceId"`
	}
	_ = json.Unmarshal(data, &head) // ReplayHistory says what is wrong with a file that is no history
	var recorded, instance string
	for _, e := range head {
		if e.Type == 0 { // ExecutionStarted
			recorded, instance = e.Name, e.InstanceID
			break
		}
	}
	err = reprise.ReplayHistory(orchestrator, data)
	if err != nil && !errors.Is(err, reprise.ErrNonDeterminism) {
		// Not a history, not an orchestrator, a panic: nothing more to say about the instance.
		if instance != "" {
			return fmt.Errorf("instance %q: %w", instance, err)
		}
		return err
	}
	if named != nil && recorded != "" && !strings.EqualFold(recorded, named.Name()) {
		return fmt.Errorf("the history is of orchestrator %q (instance %q), checked against %q: keep each orchestrator's histories apart",
			recorded, instance, named.Name())
	}
	if err != nil {
		return fmt.Errorf("instance %q: %w\n\tthe code no longer replays this recorded instance: guard the change with ctx.IsPatched "+
			"(docs/patching.md), or, once no instance like it runs any more, delete the file", instance, err)
	}
	return nil
}
