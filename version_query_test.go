package reprise_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
)

// TestListByVersion: the Client lists and counts instances by the version they were started
// with, "" meaning none, and refuses a version filter the store could not match.
func TestListByVersion(t *testing.T) {
	app := startApp(t, []reprise.Definition{echoOrch})
	c := app.Client()
	ctx := testCtx(t)
	start := func(id string, opts ...reprise.StartOption) {
		t.Helper()
		if _, err := echoOrch.Start(ctx, c, json.RawMessage(`1`), append(opts, reprise.WithInstanceID(id))...); err != nil {
			t.Fatal(err)
		}
		waitDone(t, c, id)
	}
	start("v1-a", reprise.WithVersion("1.0"))
	start("v1-b", reprise.WithVersion("1.0"))
	start("v2", reprise.WithVersion("2.0"))
	start("upper", reprise.WithVersion("V1.0"))
	start("plain")

	list := func(q reprise.Query) []string {
		t.Helper()
		page, next, err := c.ListInstances(ctx, q)
		if err != nil || next != "" {
			t.Fatalf("ListInstances(%+v) = %v, %q, %v", q, page, next, err)
		}
		var got []string
		for _, inst := range page {
			if !slices.Contains(q.Versions, inst.Version) {
				t.Errorf("ListInstances(Versions %q) listed %s of version %q", q.Versions, inst.ID, inst.Version)
			}
			got = append(got, inst.ID)
		}
		slices.Sort(got)
		return got
	}
	if got := list(reprise.Query{Versions: []string{"1.0"}}); !slices.Equal(got, []string{"v1-a", "v1-b"}) {
		t.Errorf("Versions [1.0] = %v, want v1-a and v1-b (not V1.0)", got)
	}
	if got := list(reprise.Query{Versions: []string{"", "2.0"}, WithoutPayloads: true}); !slices.Equal(got, []string{"plain", "v2"}) {
		t.Errorf("Versions [\"\" 2.0] = %v, want plain and v2", got)
	}
	if got := list(reprise.Query{Versions: []string{"1.0"}, Statuses: []reprise.RuntimeStatus{reprise.StatusRunning}}); len(got) != 0 {
		t.Errorf("Versions [1.0] and Running = %v, want none", got)
	}
	counts, err := c.CountInstances(ctx, reprise.Query{Versions: []string{"1.0", "V1.0"}})
	if err != nil || counts[reprise.StatusCompleted] != 3 || len(counts) != 1 {
		t.Errorf("CountInstances(Versions 1.0, V1.0) = %v, %v; want Completed 3", counts, err)
	}

	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint(i)
	}
	for _, bad := range [][]string{{"1\x00"}, {"1.0", "1.\xff"}, {strings.Repeat("9", 2049)}, tooMany} {
		if _, _, err := c.ListInstances(ctx, reprise.Query{Versions: bad}); !errors.Is(err, reprise.ErrInvalidArgument) {
			t.Errorf("ListInstances(Versions %.30q) = %v, want ErrInvalidArgument", bad, err)
		}
		if _, err := c.CountInstances(ctx, reprise.Query{Versions: bad}); !errors.Is(err, reprise.ErrInvalidArgument) {
			t.Errorf("CountInstances(Versions %.30q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}
