package reprise_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
)

const (
	multiHostInstances = 1000
	multiHostHub       = "multihost"
)

// TestMultiHostChild is one host process of TestMultiHost; it does nothing on its own. It serves
// the hello sequence on PostgreSQL and records every activity it runs in a shared log file.
func TestMultiHostChild(t *testing.T) {
	dsn := os.Getenv("REPRISE_MULTIHOST_DSN")
	if dsn == "" {
		t.Skip("runs as a child process of TestMultiHost")
	}
	host := os.Getenv("REPRISE_MULTIHOST_NAME")
	runs, err := os.OpenFile(os.Getenv("REPRISE_MULTIHOST_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	hello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		// One short line per O_APPEND write: lines from several processes do not interleave.
		info, _ := reprise.ActivityInfoFrom(ctx)
		fmt.Fprintf(runs, "%s %s %s\n", host, info.InstanceID, city)
		return "Hello " + city + "!", nil
	})
	app := reprise.NewApp(
		reprise.WithPostgres(dsn), reprise.WithHub(multiHostHub),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
		reprise.WithAnonymousManagement(),
		reprise.WithLeaseDuration(2*time.Second),
		reprise.WithPollInterval(200*time.Millisecond),
	)
	app.Register(hello, helloSequence)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("listening", ln.Addr())
	if err := app.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
}

type hostProcess struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// TestMultiHost: three host processes share one task hub on PostgreSQL. 1,000 hello sequences
// are started through one host's HTTP API; one host is killed with SIGKILL mid-run and another
// is restarted. Every instance must complete with the right output, no episode may be applied
// twice, and every host must have done some of the work.
func TestMultiHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dsn := pgtest.DSN(t)
	runLog := filepath.Join(t.TempDir(), "runs.log")
	var hosts []*hostProcess
	t.Cleanup(func() {
		for _, h := range hosts {
			if h.cmd.ProcessState == nil {
				h.cmd.Process.Kill()
				h.cmd.Wait()
			}
		}
	})
	startHost := func(name string) *hostProcess {
		cmd, lines := startChild(t, "TestMultiHostChild", "REPRISE_MULTIHOST_DSN="+dsn,
			"REPRISE_MULTIHOST_NAME="+name, "REPRISE_MULTIHOST_LOG="+runLog)
		h := &hostProcess{name: name, cmd: cmd}
		hosts = append(hosts, h)
		for lines.Scan() {
			if addr, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
				h.addr = addr
				break
			}
		}
		if h.addr == "" {
			t.Fatalf("host %s did not start", name)
		}
		go func() { // drain the rest (test framework output) so the child never blocks on stdout
			for lines.Scan() {
			}
		}()
		return h
	}
	h1, h2, h3 := startHost("h1"), startHost("h2"), startHost("h3")

	// Start every instance through h1's management API, from 16 clients at once.
	ids := make([]string, multiHostInstances)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				id := fmt.Sprintf("mh-%04d", i)
				resp, err := http.Post("http://"+h1.addr+"/runtime/webhooks/durabletask/orchestrators/hello_sequence_orchestrator/"+id, "application/json", nil)
				if err != nil {
					t.Errorf("start %s: %v", id, err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("start %s: %d", id, resp.StatusCode)
				}
				ids[i] = id
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	st, err := postgres.Open(testCtx(t), dsn, postgres.Options{Hub: multiHostHub})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Mid-run: kill h2 once a tenth of the instances completed, then restart h3 gracefully.
	waitFinished(t, ctx, st, ids[multiHostInstances/10])
	if err := h2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h2.cmd.Wait()
	if err := h3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := h3.cmd.Wait(); err != nil {
		t.Fatalf("h3 did not shut down cleanly: %v", err)
	}
	startHost("h3")

	for _, id := range ids {
		inst := waitFinished(t, ctx, st, id)
		if inst.Status != store.StatusCompleted || string(inst.Output) != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
			t.Fatalf("%s: status %s, output %s", id, inst.Status, inst.Output)
		}
		chunks, err := st.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		events, err := history.DecodeAll(chunks)
		if err != nil {
			t.Fatal(err)
		}
		var public []reprise.HistoryEvent
		for _, e := range events {
			public = append(public, reprise.HistoryEvent{Type: e.Type.String(), EventID: int(e.ID), TaskID: int(e.TaskID)})
		}
		if problem := helloHistoryProblem(public); problem != "" {
			t.Fatalf("%s: %s", id, problem)
		}
	}

	// The work was spread: every host ran activities (at least once each: a few run twice, those
	// h2 was running when it was killed).
	data, err := os.ReadFile(runLog)
	if err != nil {
		t.Fatal(err)
	}
	perHost := map[string]int{}
	runs := map[string]int{}
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) != 3 {
			t.Fatalf("malformed run log line %q", line)
		}
		perHost[f[0]]++
		runs[f[1]+" "+f[2]]++
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if perHost[h] == 0 {
			t.Errorf("host %s ran no activity: the work was not spread (%v)", h, perHost)
		}
	}
	if len(runs) != 3*multiHostInstances {
		t.Errorf("%d distinct activity invocations ran, want %d", len(runs), 3*multiHostInstances)
	}
	t.Logf("activities run per host: %v (%d runs for %d invocations)", perHost, len(bytes.Split(bytes.TrimSpace(data), []byte("\n"))), len(runs))
}

// waitFinished waits until the instance has finished, woken by the store's cross-host
// notifications.
func waitFinished(t *testing.T, ctx context.Context, st store.Store, id string) store.Instance {
	t.Helper()
	for {
		changed, stop := st.WatchInstance(id)
		inst, err := st.GetInstance(ctx, id)
		if err == nil && inst.Status.Terminal() {
			stop()
			return inst
		}
		select {
		case <-changed:
		case <-time.After(time.Second): // the fallback if a notification was missed
		case <-ctx.Done():
			stop()
			t.Fatalf("%s did not finish in time (status %v, err %v)", id, inst.Status, err)
		}
		stop()
	}
}
