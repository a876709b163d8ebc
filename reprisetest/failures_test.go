package reprisetest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/reprisetest"
)

// recorder is a testing.TB whose Fatal and Log are recorded instead of failing the test, so
// that the harness's own failures can be tested. Everything else goes to the real test.
type recorder struct {
	testing.TB
	mu    sync.Mutex
	fatal string
	logs  []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recorder) Log(args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, fmt.Sprint(args...))
	r.mu.Unlock()
}

// failure runs fn on a goroutine of its own (Fatal ends it) and returns what it failed with.
func failure(t *testing.T, fn func(tb testing.TB)) (fatal string, logs string) {
	t.Helper()
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(rec)
	}()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.fatal, strings.Join(rec.logs, "\n")
}

func TestRequireStatusLogsTheHistory(t *testing.T) {
	t.Parallel()
	fatal, logs := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, greet, longWait)
		h.Run(longWait, "Lima").RequireStatus(reprise.StatusFailed)
	})
	if !strings.Contains(fatal, "want status Failed, got Completed") {
		t.Errorf("fatal %q", fatal)
	}
	for _, want := range []string{"(long_wait): Completed", "+720h0m0s", "TimerFired", `TaskCompleted`, `result "Hello Lima!"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the dump lacks %q:\n%s", want, logs)
		}
	}
}

func TestOutputOfTheWrongType(t *testing.T) {
	t.Parallel()
	fatal, logs := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, greet, longWait)
		reprisetest.Output[int](h.Run(longWait, "Oslo"))
	})
	if !strings.Contains(fatal, "decode output") || !strings.Contains(logs, "history (") {
		t.Errorf("fatal %q, logs %q", fatal, logs)
	}
}

func TestOutputOfAnUnfinishedInstance(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, waitsForever)
		reprisetest.Output[string](h.Run(waitsForever, nil))
	})
	if !strings.Contains(fatal, "want status Completed, got Running") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestMockAfterStartIsRefused(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, greet, longWait)
		h.Client()
		reprisetest.MockActivity(h, greet)
	})
	if !strings.Contains(fatal, "declared after the App started") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestMockedTwiceIsRefused(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, greet)
		reprisetest.MockActivity(h, greet)
		reprisetest.MockActivityNamed[string, string](h, "GREET")
	})
	if !strings.Contains(fatal, "mocked twice") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestAStalledActivityFailsTheTest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stuck := reprise.NewActivity("stuck", func(ctx context.Context, _ reprise.None) (reprise.None, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return reprise.None{}, nil
	})
	calls := reprise.NewOrchestrator("calls_stuck", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		return stuck.Call(ctx, reprise.None{}).Await()
	})
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.NewWithOptions(tb, reprisetest.Options{StallTimeout: 300 * time.Millisecond}, stuck, calls)
		h.Run(calls, nil)
	})
	close(release)
	if !strings.Contains(fatal, "no progress for 300ms") || !strings.Contains(fatal, "1 claimed items unfinished") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestAnEternalOrchestrationIsBounded(t *testing.T) {
	t.Parallel()
	eternal := reprise.NewOrchestrator("eternal", func(ctx *reprise.OrchestrationContext, n int) (int, error) {
		if _, err := ctx.CreateTimer(time.Minute).Await(); err != nil {
			return 0, err
		}
		return 0, ctx.ContinueAsNew(n+1, false)
	})
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.NewWithOptions(tb, reprisetest.Options{MaxSteps: 5}, eternal)
		h.Run(eternal, 0)
	})
	if !strings.Contains(fatal, "still running after 5 moves of the clock") {
		t.Errorf("fatal %q", fatal)
	}
	// Advance runs such an orchestration for a while instead.
	h := reprisetest.New(t, eternal)
	id := h.Start(eternal, 0)
	h.Advance(10 * time.Minute)
	var n int
	if err := h.Result(id).DecodeOutput(&n); err == nil {
		t.Errorf("an eternal orchestration has an output: %d", n)
	}
	if got := string(h.Result(id).Instance.Input); got != "10" {
		t.Errorf("after 10 minutes the input is %s, want 10", got)
	}
}

func TestTheClockCannotGoBack(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		reprisetest.New(tb).Advance(-time.Second)
	})
	if !strings.Contains(fatal, "cannot go back") {
		t.Errorf("fatal %q", fatal)
	}
}

// TestNoGoroutineLeft is not parallel: it counts the process's goroutines, which parallel
// tests would change. A harness with a parked execution, a stuck instance and finished work
// leaves none behind once its test has ended.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("harness", func(t *testing.T) {
		h := reprisetest.New(t, greet, fanOut, waitsForever, ticker)
		h.Run(fanOut, 5).RequireStatus(reprise.StatusCompleted)
		h.Run(waitsForever, nil).RequireStuck()
		id := h.Start(ticker, nil)
		h.Advance(90 * time.Minute)
		if h.Result(id).Status != reprise.StatusRunning {
			t.Fatal("the ticker is not running")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling the count: goroutines that end signal nobody
	}
}

func TestDrivingTheClockFromACallbackIsRefused(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, hourly)
		h.After(time.Minute, func(context.Context, *reprise.Client) { h.Advance(time.Hour) })
		h.Run(hourly, nil)
	})
	if !strings.Contains(fatal, "called from a callback") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestCallbacksRunInTimeOrder(t *testing.T) {
	t.Parallel()
	h := reprisetest.New(t, hourly)
	var order []string
	at := func(name string) func(context.Context, *reprise.Client) {
		return func(context.Context, *reprise.Client) {
			order = append(order, fmt.Sprintf("%s@%v", name, h.Now().Sub(reprisetest.DefaultStart())))
		}
	}
	h.After(2*time.Hour, at("c"))
	h.After(time.Minute, at("a"))
	h.After(time.Minute, at("b")) // same time: in the order added
	h.After(-time.Hour, at("past"))
	h.Advance(3 * time.Hour)
	want := "[past@0s a@1m0s b@1m0s c@2h0m0s]"
	if got := fmt.Sprint(order); got != want {
		t.Errorf("callbacks ran %s, want %s", got, want)
	}
}

func TestUnregisteredActivityIsReported(t *testing.T) {
	t.Parallel()
	callsMissing := reprise.NewOrchestrator("calls_missing", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
		return reprise.CallActivity[string](ctx, "not_registered", nil).Await()
	})
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.New(tb, greet, callsMissing)
		h.Run(callsMissing, nil)
	})
	if !strings.Contains(fatal, `work that nothing registered: activity "not_registered" (1 waiting)`) {
		t.Errorf("fatal %q", fatal)
	}
}

func TestStartOfAnUnregisteredOrchestratorFails(t *testing.T) {
	t.Parallel()
	fatal, _ := failure(t, func(tb testing.TB) {
		reprisetest.New(tb, greet, hourly).Run(reprisetest.ByName("nowhere"), nil)
	})
	if !strings.Contains(fatal, `start "nowhere"`) || !strings.Contains(fatal, "register") {
		t.Errorf("fatal %q", fatal)
	}
}

func TestADeadlockedOrchestratorFailsTheTest(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	blocks := reprise.NewOrchestrator("blocks", func(ctx *reprise.OrchestrationContext, _ reprise.None) (reprise.None, error) {
		if !ctx.IsReplaying() {
			<-release // outside Await: the engine gives the episode up as deadlocked
		}
		return reprise.None{}, nil
	})
	fatal, _ := failure(t, func(tb testing.TB) {
		h := reprisetest.NewWithOptions(tb, reprisetest.Options{
			StallTimeout: time.Second,
			AppOptions:   []reprise.Option{reprise.WithDeadlockTimeout(100 * time.Millisecond), reprise.WithPollInterval(50 * time.Millisecond)},
		}, blocks)
		h.Run(blocks, nil)
	})
	close(release)
	// The engine's polls in the meantime find nothing to claim, which is no progress.
	if !strings.Contains(fatal, "no progress for 1s") || !strings.Contains(fatal, "does not yield") {
		t.Errorf("fatal %q", fatal)
	}
}
