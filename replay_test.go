package reprise_test

// Recorded histories as replay tests, in the manner of Temporal's Go SDK.
//
// Each golden file in testdata/histories is the exported history of a real run of one of the
// orchestrators below, on an App with a SQLite file. TestReplayRecordedHistories checks that the
// current code still replays every golden; TestReplayMustFail pairs goldens with changed code
// under the same orchestrator name (code changed under running instances) and checks that replay
// reports the non-determinism, naming what history recorded and what the code did.
//
// Regenerate the goldens after an intended change of the orchestrators or of the history format:
//
//	go test -run TestReplay -update

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/history"
)

var updateGoldens = flag.Bool("update", false, "regenerate the recorded histories in testdata/histories")

const goldenDir = "testdata/histories"

// Activities of the recorded orchestrations.
var (
	goldenFetch = reprise.NewActivity("replay_fetch", func(_ context.Context, key string) (string, error) {
		return "fetched:" + key, nil
	})
	goldenTransform = reprise.NewActivity("replay_transform", func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	goldenStore = reprise.NewActivity("replay_store", func(_ context.Context, s string) (string, error) {
		return "stored:" + s, nil
	})
	goldenSquare = reprise.NewActivity("replay_square", func(_ context.Context, n int) (int, error) {
		return n * n, nil
	})
	goldenEcho = reprise.NewActivity("replay_echo", func(_ context.Context, s string) (string, error) {
		return s, nil
	})
	// goldenFlaky fails the first two calls of each instance, then succeeds.
	goldenFlaky = reprise.NewActivity("replay_flaky", func(ctx context.Context, s string) (string, error) {
		info, ok := reprise.ActivityInfoFrom(ctx)
		if !ok {
			return "", errors.New("no activity info")
		}
		n := flakyCalls(info.InstanceID).Add(1)
		if n <= 2 {
			return "", fmt.Errorf("transient failure %d", n)
		}
		return fmt.Sprintf("%s after %d calls", s, n), nil
	})
)

var flakyCounters sync.Map // instance ID → *atomic.Int32

func flakyCalls(instanceID string) *atomic.Int32 {
	c, _ := flakyCounters.LoadOrStore(instanceID, new(atomic.Int32))
	return c.(*atomic.Int32)
}

// The recorded orchestrators. Their names are part of the goldens: do not rename them.
var (
	goldenSequence = reprise.NewOrchestrator("replay_sequence",
		func(ctx *reprise.OrchestrationContext, key string) (string, error) {
			raw, err := goldenFetch.Call(ctx, key).Await()
			if err != nil {
				return "", err
			}
			shaped, err := goldenTransform.Call(ctx, raw).Await()
			if err != nil {
				return "", err
			}
			return goldenStore.Call(ctx, shaped).Await()
		})

	goldenFanOut = reprise.NewOrchestrator("replay_fan_out",
		func(ctx *reprise.OrchestrationContext, ns []int) (int, error) {
			var tasks []*reprise.Task[int]
			for _, n := range ns {
				tasks = append(tasks, goldenSquare.Call(ctx, n))
			}
			squares, err := reprise.All(ctx, tasks...).Await()
			if err != nil {
				return 0, err
			}
			sum := 0
			for _, s := range squares {
				sum += s
			}
			return sum, nil
		})

	// goldenTimerRace runs two races: a short timer against an event nobody raises (the timer
	// wins), then a long timer against an event the test raises (the event wins).
	goldenTimerRace = reprise.NewOrchestrator("replay_timer_race",
		func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
			short := ctx.CreateTimer(10 * time.Millisecond)
			early := reprise.WaitForEvent[string](ctx, "early", 0)
			first, err := reprise.Any(ctx, short, early).Await()
			if err != nil {
				return "", err
			}
			if first != 0 {
				return "", fmt.Errorf("race 1: the event won (%d), want the timer", first)
			}
			deadline := ctx.CreateTimer(time.Hour)
			approve := reprise.WaitForEvent[string](ctx, "approve", 0)
			second, err := reprise.Any(ctx, deadline, approve).Await()
			if err != nil {
				return "", err
			}
			if second != 1 {
				return "", fmt.Errorf("race 2: the timer won (%d), want the event", second)
			}
			deadline.Cancel()
			who, err := approve.Await()
			if err != nil {
				return "", err
			}
			return "timer, then " + who, nil
		})

	goldenRetry = reprise.NewOrchestrator("replay_retry",
		func(ctx *reprise.OrchestrationContext, s string) (string, error) {
			return goldenFlaky.Call(ctx, s, reprise.WithRetry(reprise.RetryPolicy{
				FirstInterval: 10 * time.Millisecond, MaxAttempts: 5,
			})).Await()
		})

	goldenChild = reprise.NewOrchestrator("replay_child",
		func(ctx *reprise.OrchestrationContext, s string) (string, error) {
			return goldenTransform.Call(ctx, s).Await()
		})

	goldenParent = reprise.NewOrchestrator("replay_parent",
		func(ctx *reprise.OrchestrationContext, s string) (string, error) {
			shaped, err := goldenChild.Call(ctx, s).Await()
			if err != nil {
				return "", err
			}
			return goldenStore.Call(ctx, shaped).Await()
		})

	goldenEventTimeout = reprise.NewOrchestrator("replay_event_timeout",
		func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
			_, err := reprise.WaitForEvent[string](ctx, "never_sent", 10*time.Millisecond).Await()
			if !errors.Is(err, reprise.ErrTimeout) {
				return "", fmt.Errorf("want ErrTimeout, got %v", err)
			}
			return goldenStore.Call(ctx, "timed out").Await()
		})

	// goldenStatusUUID checks NewUUID's replay safety itself: the activity echoes the first UUID,
	// and a UUID that differs on replay makes the code schedule an activity history lacks.
	goldenStatusUUID = reprise.NewOrchestrator("replay_status_uuid",
		func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
			if err := ctx.SetCustomStatus("starting"); err != nil {
				return nil, err
			}
			first := ctx.NewUUID()
			echoed, err := goldenEcho.Call(ctx, first).Await()
			if err != nil {
				return nil, err
			}
			second := ctx.NewUUID()
			if echoed != first || second == first {
				_, err := reprise.CallActivity[string](ctx, "replay_uuid_mismatch", []string{first, echoed, second}).Await()
				return nil, err
			}
			if err := ctx.SetCustomStatus(map[string]string{"stage": "done", "id": second}); err != nil {
				return nil, err
			}
			return []string{first, second}, nil
		})

	// goldenApproval is recorded while it still runs: waiting for approval against a deadline.
	goldenApproval = reprise.NewOrchestrator("replay_approval",
		func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
			if err := ctx.SetCustomStatus("awaiting approval"); err != nil {
				return "", err
			}
			deadline := ctx.CreateTimer(24 * time.Hour)
			approval := reprise.WaitForEvent[string](ctx, "approval", 0)
			winner, err := reprise.Any(ctx, deadline, approval).Await()
			if err != nil {
				return "", err
			}
			if winner == 0 {
				return goldenStore.Call(ctx, "escalated").Await()
			}
			deadline.Cancel()
			who, err := approval.Await()
			if err != nil {
				return "", err
			}
			return goldenStore.Call(ctx, "approved by "+who).Await()
		})
)

// goldenCase is one recorded history: the orchestrator that replays it and what the recording
// must contain, so a regenerated golden cannot silently stop covering its feature.
type goldenCase struct {
	file     string // under testdata/histories, without .json
	def      reprise.Definition
	finished bool                 // ends with ExecutionCompleted (Completed)
	counts   map[history.Type]int // at least this many events of each type
}

var goldenCases = []goldenCase{
	{file: "replay_sequence", def: goldenSequence, finished: true,
		counts: map[history.Type]int{history.TaskScheduled: 3, history.TaskCompleted: 3}},
	{file: "replay_fan_out", def: goldenFanOut, finished: true,
		counts: map[history.Type]int{history.TaskScheduled: 3, history.TaskCompleted: 3}},
	{file: "replay_timer_race", def: goldenTimerRace, finished: true,
		counts: map[history.Type]int{history.TimerCreated: 2, history.TimerFired: 1, history.EventRaised: 1}},
	{file: "replay_retry", def: goldenRetry, finished: true,
		counts: map[history.Type]int{history.TaskScheduled: 3, history.TaskFailed: 2, history.TimerCreated: 2,
			history.TimerFired: 2, history.TaskCompleted: 1}},
	{file: "replay_parent", def: goldenParent, finished: true,
		counts: map[history.Type]int{history.SubOrchestrationInstanceCreated: 1,
			history.SubOrchestrationInstanceCompleted: 1, history.TaskScheduled: 1}},
	{file: "replay_child", def: goldenChild, finished: true,
		counts: map[history.Type]int{history.TaskScheduled: 1, history.TaskCompleted: 1}},
	{file: "replay_event_timeout", def: goldenEventTimeout, finished: true,
		counts: map[history.Type]int{history.TimerCreated: 1, history.TimerFired: 1, history.TaskScheduled: 1}},
	{file: "replay_status_uuid", def: goldenStatusUUID, finished: true,
		counts: map[history.Type]int{history.TaskScheduled: 1, history.TaskCompleted: 1}},
	{file: "replay_approval_running", def: goldenApproval, finished: false,
		counts: map[history.Type]int{history.TimerCreated: 1}},
}

var (
	recordOnce sync.Once
	recordErr  error
)

// loadGolden returns a recorded history; with -update, all of them are recorded first (once).
func loadGolden(t *testing.T, file string) []byte {
	t.Helper()
	if *updateGoldens {
		recordOnce.Do(func() { recordErr = recordGoldens() })
		if recordErr != nil {
			t.Fatalf("recording the histories: %v", recordErr)
		}
	}
	data, err := os.ReadFile(filepath.Join(goldenDir, file+".json"))
	if err != nil {
		t.Fatalf("%v (run go test -run TestReplay -update to record the histories)", err)
	}
	return data
}

// recordGoldens runs every recorded orchestration for real, on a temporary SQLite file, and
// writes the exported histories.
func recordGoldens() (err error) {
	dir, err := os.MkdirTemp("", "reprise-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(dir, "record.db")))
	app.Register(goldenFetch, goldenTransform, goldenStore, goldenSquare, goldenEcho, goldenFlaky,
		goldenSequence, goldenFanOut, goldenTimerRace, goldenRetry, goldenChild, goldenParent,
		goldenEventTimeout, goldenStatusUUID, goldenApproval)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if serr := app.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}()
	c := app.Client()
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		return err
	}
	write := func(file, id string) error {
		data, err := c.ExportHistory(ctx, id)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(goldenDir, file+".json"), append(data, '\n'), 0o644)
	}
	// completed starts an instance under a fixed ID, waits for it to complete with the output
	// want (compared as JSON) and writes its history.
	completed := func(file string, def interface {
		Name() string
	}, input any, want string, raise ...string) error {
		id := "golden-" + file
		if _, err := c.StartNew(ctx, def.Name(), input, reprise.WithInstanceID(id)); err != nil {
			return err
		}
		for i := 0; i+1 < len(raise); i += 2 {
			if err := c.RaiseEvent(ctx, id, raise[i], raise[i+1]); err != nil {
				return err
			}
		}
		inst, err := c.WaitForCompletion(ctx, id)
		if err != nil {
			return err
		}
		if inst.Status != reprise.StatusCompleted {
			return fmt.Errorf("%s: status %s, failure %+v", file, inst.Status, inst.Failure)
		}
		if want != "" && string(inst.Output) != want {
			return fmt.Errorf("%s: output %s, want %s", file, inst.Output, want)
		}
		return write(file, id)
	}

	if err := completed("replay_sequence", goldenSequence, "k1", `"stored:FETCHED:K1"`); err != nil {
		return err
	}
	if err := completed("replay_fan_out", goldenFanOut, []int{1, 2, 3}, `14`); err != nil {
		return err
	}
	// The "approve" event may arrive before the second race: it is then kept for its wait.
	if err := completed("replay_timer_race", goldenTimerRace, nil, `"timer, then alice"`, "approve", "alice"); err != nil {
		return err
	}
	if err := completed("replay_retry", goldenRetry, "flaky", `"flaky after 3 calls"`); err != nil {
		return err
	}
	if n := flakyCalls("golden-replay_retry").Load(); n != 3 {
		return fmt.Errorf("replay_retry: the flaky activity ran %d times, want 3", n)
	}
	if err := completed("replay_parent", goldenParent, "sub", `"stored:SUB"`); err != nil {
		return err
	}
	if err := write("replay_child", "golden-replay_parent:0"); err != nil {
		return err
	}
	if err := completed("replay_event_timeout", goldenEventTimeout, nil, `"stored:timed out"`); err != nil {
		return err
	}
	if err := completed("replay_status_uuid", goldenStatusUUID, nil, ""); err != nil {
		return err
	}
	if err := checkStatusUUID(ctx, c, "golden-replay_status_uuid"); err != nil {
		return err
	}

	// An instance still running: its first episode is committed (it is no longer Pending) and
	// nothing else can happen before the test raises the approval.
	const approvalID = "golden-replay_approval_running"
	if _, err := goldenApproval.Start(ctx, c, reprise.None{}, reprise.WithInstanceID(approvalID)); err != nil {
		return err
	}
	if _, err := c.WaitForStart(ctx, approvalID); err != nil {
		return err
	}
	if err := write("replay_approval_running", approvalID); err != nil {
		return err
	}
	if err := c.RaiseEvent(ctx, approvalID, "approval", "bob"); err != nil {
		return err
	}
	inst, err := c.WaitForCompletion(ctx, approvalID)
	if err != nil {
		return err
	}
	if string(inst.Output) != `"stored:approved by bob"` {
		return fmt.Errorf("replay_approval: status %s, output %s", inst.Status, inst.Output)
	}
	return nil
}

func checkStatusUUID(ctx context.Context, c *reprise.Client, id string) error {
	inst, err := c.GetInstance(ctx, id)
	if err != nil {
		return err
	}
	var ids []string
	if err := json.Unmarshal(inst.Output, &ids); err != nil {
		return err
	}
	if len(ids) != 2 || ids[0] == ids[1] || len(ids[0]) != 36 {
		return fmt.Errorf("replay_status_uuid: output %s, want two different UUIDs", inst.Output)
	}
	var status map[string]string
	if err := json.Unmarshal(inst.CustomStatus, &status); err != nil {
		return fmt.Errorf("replay_status_uuid: custom status %s: %w", inst.CustomStatus, err)
	}
	if status["stage"] != "done" || status["id"] != ids[1] {
		return fmt.Errorf("replay_status_uuid: custom status %s, want stage done and id %s", inst.CustomStatus, ids[1])
	}
	return nil
}

// checkCoverage fails when a golden no longer records what its case is about.
func checkCoverage(t *testing.T, gc goldenCase, data []byte) {
	t.Helper()
	var events []history.Event
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatalf("decoding %s: %v", gc.file, err)
	}
	got := map[history.Type]int{}
	for _, e := range events {
		got[e.Type]++
	}
	for typ, n := range gc.counts {
		if got[typ] < n {
			t.Errorf("%s records %d %s events, want at least %d", gc.file, got[typ], typ, n)
		}
	}
	if len(events) == 0 || events[0].Type != history.OrchestratorStarted || got[history.ExecutionStarted] != 1 {
		t.Errorf("%s does not start like a recorded execution: %d events, %v", gc.file, len(events), got)
	}
	last := history.Type(-1)
	if len(events) > 0 {
		last = events[len(events)-1].Type
	}
	switch {
	case gc.finished && (last != history.ExecutionCompleted || events[len(events)-1].Status != int(reprise.StatusCompleted)):
		t.Errorf("%s should end with a successful ExecutionCompleted, ends with %s", gc.file, last)
	case !gc.finished && got[history.ExecutionCompleted] != 0:
		t.Errorf("%s should record a running instance, but has ExecutionCompleted", gc.file)
	}
}

func TestReplayRecordedHistories(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.file, func(t *testing.T) {
			data := loadGolden(t, gc.file)
			t.Parallel()
			checkCoverage(t, gc, data)
			if err := reprise.ReplayHistory(gc.def, data); err != nil {
				t.Fatalf("the recorded history no longer replays: %v", err)
			}
		})
	}
	// The UUID check in goldenStatusUUID must be able to fail: a recorded echo that differs from
	// the UUID the code generates on replay makes the code diverge.
	t.Run("uuid_check_is_live", func(t *testing.T) {
		data := loadGolden(t, "replay_status_uuid")
		t.Parallel()
		var events []history.Event
		if err := json.Unmarshal(data, &events); err != nil {
			t.Fatal(err)
		}
		tampered := 0
		for i, e := range events {
			if e.Type == history.TaskCompleted {
				events[i].Result = json.RawMessage(`"00000000-0000-5000-8000-000000000000"`)
				tampered++
			}
		}
		if tampered != 1 {
			t.Fatalf("%d TaskCompleted events, want 1", tampered)
		}
		changed, err := json.Marshal(events)
		if err != nil {
			t.Fatal(err)
		}
		if err := reprise.ReplayHistory(goldenStatusUUID, changed); !errors.Is(err, reprise.ErrNonDeterminism) {
			t.Fatalf("replay with a different echoed UUID: got %v, want ErrNonDeterminism", err)
		}
	})
	t.Run("retry_timers_are_marked", func(t *testing.T) {
		data := loadGolden(t, "replay_retry")
		t.Parallel()
		var events []history.Event
		if err := json.Unmarshal(data, &events); err != nil {
			t.Fatal(err)
		}
		var retries []string
		for _, e := range events {
			if e.Type == history.TimerCreated {
				retries = append(retries, e.Retry)
			}
		}
		if strings.Join(retries, ",") != "Retry Attempt 2,Retry Attempt 3" {
			t.Errorf("retry timers %q, want attempts 2 and 3", retries)
		}
	})
}

// callChain calls activities by name one after the other, each with the previous result.
func callChain(ctx *reprise.OrchestrationContext, in string, names ...string) (string, error) {
	for _, name := range names {
		out, err := reprise.CallActivity[string](ctx, name, in).Await()
		if err != nil {
			return "", err
		}
		in = out
	}
	return in, nil
}

func TestReplayMustFail(t *testing.T) {
	cases := []struct {
		name   string
		golden string
		code   reprise.Definition // same orchestrator name as the golden, changed body
		want   []string           // substrings of the error: the expected and the actual call
	}{
		{
			name:   "different_activity_name",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				return callChain(ctx, key, "replay_fetch", "replay_transform_v2", "replay_store")
			}),
			want: []string{`history has CallActivity #1 "replay_transform"`, `scheduled CallActivity #1 "replay_transform_v2"`},
		},
		{
			name:   "reordered_calls",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				return callChain(ctx, key, "replay_fetch", "replay_store", "replay_transform")
			}),
			want: []string{`history has CallActivity #1 "replay_transform"`, `scheduled CallActivity #1 "replay_store"`},
		},
		{
			name:   "fewer_calls_in_sequence",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				return callChain(ctx, key, "replay_fetch", "replay_transform")
			}),
			want: []string{`history has CallActivity #2 "replay_store"`, "did not schedule it"},
		},
		{
			name:   "fewer_calls_in_fan_out",
			golden: "replay_fan_out",
			code: reprise.NewOrchestrator("replay_fan_out", func(ctx *reprise.OrchestrationContext, ns []int) (int, error) {
				squares, err := reprise.All(ctx, goldenSquare.Call(ctx, ns[0]), goldenSquare.Call(ctx, ns[1])).Await()
				if err != nil {
					return 0, err
				}
				return squares[0] + squares[1], nil
			}),
			want: []string{`history has CallActivity #2 "replay_square"`, "did not schedule it"},
		},
		{
			name:   "fewer_retry_attempts",
			golden: "replay_retry",
			code: reprise.NewOrchestrator("replay_retry", func(ctx *reprise.OrchestrationContext, s string) (string, error) {
				return goldenFlaky.Call(ctx, s, reprise.WithRetry(reprise.RetryPolicy{
					FirstInterval: 10 * time.Millisecond, MaxAttempts: 2,
				})).Await()
			}),
			want: []string{"history has CreateTimer #3", "did not schedule it"},
		},
		{
			name:   "activity_where_history_has_timer",
			golden: "replay_timer_race",
			code: reprise.NewOrchestrator("replay_timer_race", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
				if _, err := reprise.CallActivity[string](ctx, "replay_warm_up", nil).Await(); err != nil {
					return "", err
				}
				_, err := reprise.Any(ctx, ctx.CreateTimer(10*time.Millisecond), reprise.WaitForEvent[string](ctx, "early", 0)).Await()
				return "", err
			}),
			want: []string{"history has CreateTimer #0", `scheduled CallActivity #0 "replay_warm_up"`},
		},
		{
			name:   "timer_where_history_has_activity",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				if _, err := ctx.CreateTimer(time.Second).Await(); err != nil {
					return "", err
				}
				return callChain(ctx, key, "replay_fetch", "replay_transform", "replay_store")
			}),
			want: []string{`history has CallActivity #0 "replay_fetch"`, "scheduled CreateTimer #0"},
		},
		{
			name:   "different_sub_orchestrator",
			golden: "replay_parent",
			code: reprise.NewOrchestrator("replay_parent", func(ctx *reprise.OrchestrationContext, s string) (string, error) {
				return reprise.CallSubOrchestrator[string](ctx, "replay_child_v2", s).Await()
			}),
			want: []string{`history has CallSubOrchestrator #0 "replay_child"`, `scheduled CallSubOrchestrator #0 "replay_child_v2"`},
		},
		{
			name:   "more_calls_past_the_end_of_a_running_history",
			golden: "replay_approval_running",
			code: reprise.NewOrchestrator("replay_approval", func(ctx *reprise.OrchestrationContext, _ reprise.None) (string, error) {
				deadline := ctx.CreateTimer(24 * time.Hour)
				reprise.CallActivity[string](ctx, "replay_notify_approvers", nil)
				approval := reprise.WaitForEvent[string](ctx, "approval", 0)
				_, err := reprise.Any(ctx, deadline, approval).Await()
				return "", err
			}),
			want: []string{"no further scheduled task", `scheduled CallActivity #1 "replay_notify_approvers"`},
		},
		{
			name:   "more_calls_past_the_end_of_a_finished_history",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				out, err := callChain(ctx, key, "replay_fetch", "replay_transform", "replay_store")
				if err != nil {
					return "", err
				}
				if err := ctx.SendEvent("audit-log", "sequence_done", out); err != nil {
					return "", err
				}
				return out, nil
			}),
			want: []string{"no further scheduled task", `scheduled SendEvent #3 "sequence_done"`},
		},
		{
			name:   "awaited_call_after_the_history_finished",
			golden: "replay_sequence",
			code:   sequenceWithAudit,
			// History ends with the completion; the code waits on its extra call.
			want: []string{"the orchestration finished (Completed)", `CallActivity #3 "replay_audit" and waits`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := loadGolden(t, tc.golden)
			t.Parallel()
			err := reprise.ReplayHistory(tc.code, data)
			if !errors.Is(err, reprise.ErrNonDeterminism) {
				t.Fatalf("replaying %s with changed code: got %v, want an error wrapping ErrNonDeterminism", tc.golden, err)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// sequenceWithAudit awaits a fourth activity where the recorded sequence completed.
var sequenceWithAudit = reprise.NewOrchestrator("replay_sequence",
	func(ctx *reprise.OrchestrationContext, key string) (string, error) {
		return callChain(ctx, key, "replay_fetch", "replay_transform", "replay_store", "replay_audit")
	})

// TestReplayMustFailMessages checks what the non-determinism messages say in the less common cases.
func TestReplayMustFailMessages(t *testing.T) {
	t.Run("awaited_call_after_the_history_finished_names_the_call", func(t *testing.T) {
		data := loadGolden(t, "replay_sequence")
		err := reprise.ReplayHistory(sequenceWithAudit, data)
		if !errors.Is(err, reprise.ErrNonDeterminism) || !strings.Contains(err.Error(), `CallActivity #3 "replay_audit"`) {
			t.Fatalf("got %v, want a non-determinism error naming CallActivity #3 \"replay_audit\"", err)
		}
	})
	t.Run("says_non_deterministic_once", func(t *testing.T) {
		data := loadGolden(t, "replay_sequence")
		err := reprise.ReplayHistory(sequenceWithAudit, data)
		if err == nil || strings.Count(err.Error(), "non-deterministic orchestrator") != 1 {
			t.Fatalf("error %q: want \"non-deterministic orchestrator\" exactly once", err)
		}
	})
}

// TestReplayCompatibleChanges: changes that do not alter the durable calls replay cleanly.
func TestReplayCompatibleChanges(t *testing.T) {
	cases := []struct {
		name   string
		golden string
		code   reprise.Definition
	}{
		{
			// Names are case-insensitive, as in Durable Functions.
			name:   "activity_name_case",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("REPLAY_SEQUENCE", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
				return callChain(ctx, key, "Replay_Fetch", "REPLAY_TRANSFORM", "replay_store")
			}),
		},
		{
			// Inputs and results are not part of the match; only kind, order and name are.
			name:   "different_inputs_and_result_handling",
			golden: "replay_sequence",
			code: reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (int, error) {
				for _, name := range []string{"replay_fetch", "replay_transform", "replay_store"} {
					if _, err := reprise.CallActivity[string](ctx, name, key+"-v2").Await(); err != nil {
						return 0, err
					}
				}
				return 42, nil
			}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := loadGolden(t, tc.golden)
			t.Parallel()
			if err := reprise.ReplayHistory(tc.code, data); err != nil {
				t.Fatalf("a compatible change does not replay: %v", err)
			}
		})
	}
}

func TestReplayInvalidHistory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
	}{
		{"not_json", "this is not a history"},
		{"truncated", `[{"id": -1, "type": 12, "ts": "2025-01-01T00:00:00Z"}, {"id": -1, "type": `},
		{"object_not_array", `{"id": -1, "type": 0}`},
	} {
		err := reprise.ReplayHistory(goldenSequence, []byte(tc.data))
		if err == nil {
			t.Errorf("%s: replay succeeded, want an error", tc.name)
			continue
		}
		if errors.Is(err, reprise.ErrNonDeterminism) {
			t.Errorf("%s: %v wraps ErrNonDeterminism; a broken file is not a code change", tc.name, err)
		}
		if !strings.Contains(err.Error(), "not an exported history") {
			t.Errorf("%s: error %q does not say the input is not an exported history", tc.name, err)
		}
	}

	t.Run("no_events", func(t *testing.T) {
		for _, data := range []string{"[]", "null"} {
			if err := reprise.ReplayHistory(goldenSequence, []byte(data)); err == nil || errors.Is(err, reprise.ErrNonDeterminism) {
				t.Errorf("replaying %s: got %v, want an error that is not ErrNonDeterminism", data, err)
			}
		}
	})

	// An activity is not something to replay.
	err := reprise.ReplayHistory(goldenFetch, loadGolden(t, "replay_sequence"))
	if err == nil || errors.Is(err, reprise.ErrNonDeterminism) || !strings.Contains(err.Error(), "not an orchestrator") {
		t.Errorf("replaying with an activity definition: got %v, want a not-an-orchestrator error", err)
	}
}

// TestReplayPanicsAndLogging: code that logs replays (the App is never started, yet ctx.Logger()
// works), and code that panics during the replay is reported as a panic, with its stack, not as
// non-determinism.
func TestReplayPanicsAndLogging(t *testing.T) {
	t.Parallel()
	data := loadGolden(t, "replay_sequence")
	logging := reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
		ctx.Logger().Info("starting the sequence", "key", key)
		return callChain(ctx, key, "replay_fetch", "replay_transform", "replay_store")
	})
	if err := reprise.ReplayHistory(logging, data); err != nil {
		t.Errorf("code that logs does not replay: %v", err)
	}
	panicking := reprise.NewOrchestrator("replay_sequence", func(ctx *reprise.OrchestrationContext, key string) (string, error) {
		out, err := reprise.CallActivity[string](ctx, "replay_fetch", key).Await()
		if err != nil {
			return "", err
		}
		var parts []string
		_ = parts[len(out)] // index out of range
		return out, nil
	})
	err := reprise.ReplayHistory(panicking, data)
	if err == nil || errors.Is(err, reprise.ErrNonDeterminism) {
		t.Fatalf("replaying code that panics: %v, want a panic error that is not ErrNonDeterminism", err)
	}
	for _, want := range []string{"panicked", "index out of range", "goroutine", "TestReplayPanicsAndLogging"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q (the panic and its stack)", err, want)
		}
	}
}
