package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// staticRegistry resolves a fixed set of orchestrators.
type staticRegistry map[string]replay.Func

func (r staticRegistry) Orchestrator(name string) (replay.Func, bool) {
	f, ok := r[name]
	return f, ok
}

func (staticRegistry) Activity(string) (ActivityFunc, bool) { return nil, false }

func (r staticRegistry) Names() (orchestrators, activities store.Names) {
	for name := range r {
		orchestrators = append(orchestrators, name)
	}
	return orchestrators, nil
}

func msg(t *testing.T, id int64, execID string, ev history.Event) store.Message {
	t.Helper()
	m, err := control.Message("i", execID, ev)
	if err != nil {
		t.Fatal(err)
	}
	m.ID = id
	return m
}

// TestEpisode computes episodes of instances without history (no store call is needed) and
// checks what they would commit: the consumed messages, the new state, the history chunk, the
// tasks, messages and starts.
func TestEpisode(t *testing.T) {
	now := time.Now().UTC()
	start := func(name, input string) history.Event {
		e := history.New(history.ExecutionStarted, now)
		e.Name, e.InstanceID, e.ExecutionID, e.Input = name, "i", "x1", json.RawMessage(input)
		return e
	}
	reg := staticRegistry{
		"fanout": func(c *replay.Context) ([]byte, error) {
			a := c.CallActivity("a", "", []byte(`1`), nil)
			b := c.CallSubOrchestrator("child", "", "", nil, nil)
			c.CreateTimer(c.Now().Add(time.Hour))
			c.SendEvent("other", "ping", []byte(`{}`))
			_, err := c.All(a, b).Await()
			return nil, err
		},
		"done":  func(*replay.Context) ([]byte, error) { return []byte(`"ok"`), nil },
		"fails": func(*replay.Context) ([]byte, error) { return nil, fmt.Errorf("no luck") },
	}
	type want struct {
		consumed string // message IDs
		status   store.Status
		history  string // event types of the chunk
		tasks    int
		messages int
		starts   int
		output   string
		failure  string // substring of the stored failure
	}
	cases := []struct {
		name   string
		inst   store.Instance
		msgs   func(t *testing.T) []store.Message
		want   want
		noWork bool // late messages: the instance is left as it is
	}{
		{
			name: "a start schedules every kind of action",
			inst: store.Instance{ID: "i", Name: "fanout", ExecutionID: "x1", Status: store.StatusPending},
			msgs: func(t *testing.T) []store.Message { return []store.Message{msg(t, 1, "x1", start("fanout", `null`))} },
			want: want{consumed: "1", status: store.StatusRunning, tasks: 1, messages: 2, starts: 1,
				history: "OrchestratorStarted ExecutionStarted TaskScheduled SubOrchestrationInstanceCreated TimerCreated EventSent"},
		},
		{
			name: "an orchestrator that returns completes in one episode",
			inst: store.Instance{ID: "i", Name: "done", ExecutionID: "x1", Status: store.StatusPending},
			msgs: func(t *testing.T) []store.Message { return []store.Message{msg(t, 1, "x1", start("done", `null`))} },
			want: want{consumed: "1", status: store.StatusCompleted, output: `"ok"`,
				history: "OrchestratorStarted ExecutionStarted ExecutionCompleted"},
		},
		{
			name: "an error fails it, with the error's details and its message as output",
			inst: store.Instance{ID: "i", Name: "fails", ExecutionID: "x1", Status: store.StatusPending},
			msgs: func(t *testing.T) []store.Message { return []store.Message{msg(t, 1, "x1", start("fails", `null`))} },
			want: want{consumed: "1", status: store.StatusFailed, output: `"no luck"`, failure: `"message":"no luck"`,
				history: "OrchestratorStarted ExecutionStarted ExecutionCompleted"},
		},
		{
			name: "messages for an earlier execution and undecodable ones are consumed, not applied",
			inst: store.Instance{ID: "i", Name: "done", ExecutionID: "x1", Status: store.StatusPending},
			msgs: func(t *testing.T) []store.Message {
				return []store.Message{
					msg(t, 1, "x0", raisedEvent("old")),
					{ID: 2, InstanceID: "i", ExecutionID: "x1", Data: []byte("{not json")},
					msg(t, 3, "x1", start("done", `null`)),
				}
			},
			want: want{consumed: "1 2 3", status: store.StatusCompleted, output: `"ok"`,
				history: "OrchestratorStarted ExecutionStarted ExecutionCompleted"},
		},
		{
			name:   "late messages for a finished instance are consumed and change nothing",
			inst:   store.Instance{ID: "i", Name: "done", ExecutionID: "x1", Status: store.StatusCompleted, HistoryLen: 1},
			msgs:   func(t *testing.T) []store.Message { return []store.Message{msg(t, 7, "x1", raisedEvent("late"))} },
			want:   want{consumed: "7", status: store.StatusCompleted},
			noWork: true,
		},
		{
			name: "a rewind of an instance that did not fail is ignored",
			inst: store.Instance{ID: "i", Name: "done", ExecutionID: "x1", Status: store.StatusCompleted, HistoryLen: 1},
			msgs: func(t *testing.T) []store.Message {
				return []store.Message{msg(t, 8, "", history.New(history.ExecutionRewound, now))}
			},
			want:   want{consumed: "8", status: store.StatusCompleted},
			noWork: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Options{Registry: reg})
			ep, exec, res, err := e.episode(context.Background(), store.OrchestrationWork{Instance: tc.inst, Messages: tc.msgs(t)}, nil, new(func(error)), &episodeSpans{})
			if exec != nil {
				defer exec.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			var consumed []string
			for _, id := range ep.Consumed {
				consumed = append(consumed, fmt.Sprint(id))
			}
			if got := strings.Join(consumed, " "); got != tc.want.consumed {
				t.Errorf("consumed %q, want %q", got, tc.want.consumed)
			}
			if ep.Instance.Status != tc.want.status {
				t.Errorf("status %s, want %s", ep.Instance.Status, tc.want.status)
			}
			if tc.noWork {
				if res != nil || len(ep.History) != 0 || ep.Instance.UpdatedAt != tc.inst.UpdatedAt {
					t.Errorf("a finished instance was changed: %+v", ep)
				}
				return
			}
			var types []string
			for _, chunk := range ep.History {
				events, err := history.Decode(chunk)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range events {
					types = append(types, ev.Type.String())
				}
			}
			if got := strings.Join(types, " "); got != tc.want.history {
				t.Errorf("history %q, want %q", got, tc.want.history)
			}
			if len(ep.Tasks) != tc.want.tasks || len(ep.Messages) != tc.want.messages || len(ep.Starts) != tc.want.starts {
				t.Errorf("%d tasks, %d messages, %d starts; want %d, %d, %d", len(ep.Tasks), len(ep.Messages), len(ep.Starts),
					tc.want.tasks, tc.want.messages, tc.want.starts)
			}
			if string(ep.Instance.Output) != tc.want.output {
				t.Errorf("output %s, want %s", ep.Instance.Output, tc.want.output)
			}
			if !strings.Contains(string(ep.Instance.Failure), tc.want.failure) || tc.want.failure == "" && ep.Instance.Failure != nil {
				t.Errorf("failure %s, want %q", ep.Instance.Failure, tc.want.failure)
			}
		})
	}
}

func raisedEvent(name string) history.Event {
	e := history.New(history.EventRaised, time.Now().UTC())
	e.Name, e.Input = name, json.RawMessage(`1`)
	return e
}
