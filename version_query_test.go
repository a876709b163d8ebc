package reprise_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
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

// TestVersionsOverHTTP: on a served App and its store, the management API starts an instance
// with ?version=, its status JSON and the dashboard show the version, and both listings filter
// by it; a version the store cannot take is a 400 that starts nothing.
func TestVersionsOverHTTP(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(echoOrch)
	srv := hosttest.Serve(t, app)
	mgmt := srv.URL + "/runtime/webhooks/durabletask"
	const version = "2.0 beta+1 ✓"
	for id, v := range map[string]string{"hv-1": version, "hv-none": ""} {
		target := mgmt + "/orchestrators/echo/" + id
		if v != "" {
			target += "?version=" + url.QueryEscape(v)
		}
		if r := hosttest.Do(t, "POST", target, []byte(`1`)); r.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", target, r.StatusCode, r.Body)
		}
		hosttest.WaitDone(t, app, id)
	}
	if inst, err := app.Client().GetInstance(testCtx(t), "hv-1"); err != nil || inst.Version != version {
		t.Fatalf("instance started with ?version=: %+v, %v", inst, err)
	}

	var st map[string]any
	hosttest.Do(t, "GET", mgmt+"/instances/hv-1", nil).JSON(t, &st)
	if st["version"] != version {
		t.Errorf("status JSON version %v, want %q", st["version"], version)
	}
	var plain map[string]any
	hosttest.Do(t, "GET", mgmt+"/instances/hv-none", nil).JSON(t, &plain)
	if _, ok := plain["version"]; ok || plain["instanceId"] != "hv-none" {
		t.Errorf("status JSON of an instance without a version has one: %v", plain)
	}

	// ids lists target (GET instances of the management API, or of the dashboard's with dash)
	// as sorted "ID@version" ("<nil>" for none).
	ids := func(target string, dash bool) []string {
		t.Helper()
		r := hosttest.Do(t, "GET", target, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", target, r.StatusCode, r.Body)
		}
		var rows []map[string]any
		key := "instanceId"
		if dash {
			var page struct{ Instances []map[string]any }
			r.JSON(t, &page)
			rows, key = page.Instances, "id"
		} else {
			r.JSON(t, &rows)
		}
		var got []string
		for _, row := range rows {
			got = append(got, fmt.Sprint(row[key], "@", row["version"]))
		}
		slices.Sort(got)
		return got
	}
	q := url.QueryEscape(version)
	for _, c := range []struct {
		target string
		dash   bool
		want   []string
	}{
		{mgmt + "/instances?version=" + q, false, []string{"hv-1@" + version}},
		{mgmt + "/instances?version=", false, []string{"hv-none@<nil>"}},
		{mgmt + "/instances?version=2.0", false, nil},
		{srv.URL + "/dashboard/api/instances?version=" + q, true, []string{"hv-1@" + version}},
		{srv.URL + "/dashboard/api/instances?version=&version=" + q, true, []string{"hv-1@" + version, "hv-none@<nil>"}},
		{srv.URL + "/dashboard/api/instances", true, []string{"hv-1@" + version, "hv-none@<nil>"}},
	} {
		if got := ids(c.target, c.dash); !slices.Equal(got, c.want) {
			t.Errorf("GET %s: %v, want %v", c.target, got, c.want)
		}
	}
	var d map[string]any
	hosttest.Do(t, "GET", srv.URL+"/dashboard/api/instances/hv-1", nil).JSON(t, &d)
	if d["version"] != version {
		t.Errorf("dashboard detail version %v, want %q", d["version"], version)
	}

	for _, bad := range []string{"1%00", "1.%FF", strings.Repeat("9", 2049)} {
		r := hosttest.Do(t, "POST", mgmt+"/orchestrators/echo/hv-bad?version="+bad, []byte(`1`))
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "'version'") {
			t.Errorf("start with version %.20q: %d %s, want 400 naming the parameter", bad, r.StatusCode, r.Body)
		}
	}
	if _, err := app.Client().GetInstance(testCtx(t), "hv-bad"); !errors.Is(err, reprise.ErrInstanceNotFound) {
		t.Errorf("a refused start created the instance: %v", err)
	}
}
