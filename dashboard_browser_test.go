package reprise_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// dashboardSteps is the number of steps interop/browser/dashboard.mjs runs; a script that skipped
// steps, or gained some without this being updated, fails the test.
const dashboardSteps = 26

const (
	chromiumPath   = "/usr/bin/chromium"
	dashMasterKey  = "dashboard-master-key"
	browserInstall = "install Node.js 20+ with npm, and Chromium (Debian: apt-get install chromium), " +
		"or set REPRISE_TEST_BROWSER=1 to make this a failure"
)

var dashboardSummary = regexp.MustCompile(`(?m)^OK (\d+) steps$`)

// TestDashboardInBrowser serves an App with a few instances (completed hello sequences, a failed
// one, one waiting for an event, one with a timer and a sub-orchestration) and drives its
// dashboard in headless Chromium with playwright-core (interop/browser/dashboard.mjs): key
// prompt, list, counts, filters, timelines, terminate, raise-event validation, the entities view
// and an entity's page (a key of markup, a lock holder, a backlog), screenshots.
func TestDashboardInBrowser(t *testing.T) {
	required := os.Getenv("REPRISE_TEST_BROWSER") == "1"
	missing := func(what string) {
		if required {
			t.Fatalf("REPRISE_TEST_BROWSER=1 but %s", what)
		}
		t.Skipf("skipping the dashboard browser test: %s; %s", what, browserInstall)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing("npm is not on PATH")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(chromiumPath + " is missing")
	}
	dir, err := filepath.Abs(filepath.Join("interop", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	installNodeDeps(t, npm, dir, "playwright-core")
	artifacts := os.Getenv("REPRISE_ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = filepath.Join("artifacts")
	}
	if artifacts, err = filepath.Abs(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	app := dashboardApp(t)
	srv := hosttest.Serve(t, app)
	ids := startDashboardInstances(t, app)
	for _, id := range []string{ids.hello1, ids.hello2, ids.failed, ids.parent} {
		hosttest.WaitDone(t, app, id)
	}
	waitStatus(t, app.Client(), ids.waiting, reprise.StatusRunning)
	child := childOf(t, app, ids.parent)
	signalDashboardEntities(t, app)

	runCtx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, node, "dashboard.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"DASHBOARD_URL="+srv.URL+"/dashboard/",
		"MASTER_KEY="+dashMasterKey,
		"ARTIFACTS_DIR="+artifacts,
		"CHROMIUM="+chromiumPath,
		"HELLO_ID="+ids.hello1,
		"FAILED_ID="+ids.failed,
		"WAITING_ID="+ids.waiting,
		"PARENT_ID="+ids.parent,
		"CHILD_ID="+child,
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node dashboard.mjs:\n%s", strings.TrimRight(string(out), "\n"))
	if runCtx.Err() != nil {
		t.Fatal("node dashboard.mjs did not finish in time")
	}
	if err != nil {
		t.Fatalf("node dashboard.mjs failed: %v (screenshots and page dumps in %s)", err, artifacts)
	}
	m := dashboardSummary.FindAllSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatal(`node dashboard.mjs exited 0 without one summary line "OK <n> steps"`)
	}
	if n, _ := strconv.Atoi(string(m[0][1])); n != dashboardSteps {
		t.Fatalf("node dashboard.mjs passed %d steps, want %d (update dashboardSteps when steps change)", n, dashboardSteps)
	}

	// The terminate the page sent really happened.
	inst := hosttest.WaitDone(t, app, ids.waiting)
	if inst.Status != reprise.StatusTerminated {
		t.Fatalf("%s is %v after the page terminated it, want Terminated", ids.waiting, inst.Status)
	}
	// So did the bulk terminate and the bulk purge: bulk-1 and bulk-2 are gone, bulk-3 (which
	// the script terminated behind the page's back) is there, terminated.
	for _, id := range []string{"bulk-1", "bulk-2"} {
		if _, err := app.Client().GetInstance(context.Background(), id); !errors.Is(err, reprise.ErrInstanceNotFound) {
			t.Errorf("%s after the page's bulk purge: %v, want not found", id, err)
		}
	}
	if inst := hosttest.WaitDone(t, app, "bulk-3"); inst.Status != reprise.StatusTerminated {
		t.Errorf("bulk-3 is %v, want Terminated", inst.Status)
	}
	t.Logf("screenshots in %s", artifacts)
}

type dashboardIDs struct{ hello1, hello2, failed, waiting, parent string }

// dashboardApp returns an App (master key set, not started) with the orchestrators of the
// instances the browser test looks at.
func dashboardApp(t *testing.T) *reprise.App {
	t.Helper()
	sayHello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		return "Hello " + city + "!", nil
	})
	helloSequence := reprise.NewOrchestrator("hello_sequence", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			g, err := sayHello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	})
	explode := reprise.NewActivity("explode", func(ctx context.Context, _ reprise.None) (reprise.None, error) {
		return reprise.None{}, errors.New("the warp core breached")
	})
	failing := reprise.NewOrchestrator("failing_job", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		return explode.Call(ctx, reprise.None{}).Await()
	})
	approval := reprise.NewOrchestrator("wait_for_approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		if err := ctx.SetCustomStatus(map[string]string{"stage": "waiting for approval"}); err != nil {
			return "", err
		}
		return reprise.WaitForEvent[string](ctx, "approval", 0).Await()
	})
	type order struct {
		Customer string `json:"customer"`
		Region   string `json:"region"`
		Items    []int  `json:"items"`
	}
	ship := reprise.NewActivity("ship", func(ctx context.Context, o order) (int, error) { return len(o.Items), nil })
	// The parent waits for an event that never comes (its timeout timer fires), ships two orders
	// (bars of one activity told apart by their struct inputs) and calls a child.
	parent := reprise.NewOrchestrator("parent_with_child", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		if _, err := reprise.WaitForEvent[string](ctx, "go", 20*time.Millisecond).Await(); !errors.Is(err, reprise.ErrTimeout) {
			return nil, fmt.Errorf("want a timeout, got %v", err)
		}
		for _, o := range []order{{"acme", "north", []int{1, 2}}, {"initech", "north", []int{3}}} {
			if _, err := ship.Call(ctx, o).Await(); err != nil {
				return nil, err
			}
		}
		return helloSequence.Call(ctx, reprise.None{}).Await()
	})
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithKeys(reprise.Keys{Master: dashMasterKey}))...)
	app.Register(sayHello, helloSequence, explode, failing, approval, ship, parent, counter, entityHolder, entitySignaller)
	return app
}

// startDashboardInstances starts the instances of the browser test on a started dashboardApp.
func startDashboardInstances(t *testing.T, app *reprise.App) dashboardIDs {
	t.Helper()
	ctx := context.Background()
	start := func(name, id string) string {
		t.Helper()
		got, err := app.Client().StartNew(ctx, name, reprise.None{}, reprise.WithInstanceID(id))
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return got
	}
	return dashboardIDs{
		hello1:  start("hello_sequence", "hello-1"),
		hello2:  start("hello_sequence", "hello-2"),
		failed:  start("failing_job", "failed-1"),
		waiting: start("wait_for_approval", "waiting-1"),
		parent:  start("parent_with_child", "parent-1"),
	}
}

// childOf returns the ID of the only sub-orchestration of parent.
func childOf(t *testing.T, app *reprise.App, parent string) string {
	t.Helper()
	list, _, err := app.Client().ListInstances(context.Background(), reprise.Query{WithoutPayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	var child string
	for _, inst := range list {
		if inst.ParentInstanceID == parent {
			if child != "" {
				t.Fatalf("%s has two children: %s and %s", parent, child, inst.ID)
			}
			child = inst.ID
		}
	}
	if child == "" {
		t.Fatalf("%s has no sub-orchestration", parent)
	}
	return child
}
