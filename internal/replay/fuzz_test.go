package replay

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/reprise-dev/reprise/internal/history"
)

// FuzzRun replays arbitrary histories (a stored chunk as JSON, split into old and new events at
// split) against orchestrators that use every kind of task. A history may be rejected as
// non-deterministic or as a panic, but the executor itself must neither panic nor hang.
func FuzzRun(f *testing.F) {
	seeds := [][]history.Event{
		{started(0), execStarted(`null`), scheduled(0, "a"), started(1), completed(0, `"x"`), scheduled(1, "b"), completed(1, `1`)},
		{started(0), execStarted(`null`), timerCreated(0), fired(0), fired(0), fired(7)},
		{started(0), raised("approve", `1`), execStarted(`null`), control(history.ExecutionSuspended, ""), raised("approve", `2`),
			control(history.ExecutionResumed, ""), control(history.ExecutionResumed, "")},
		{started(0), execStarted(`null`), scheduled(0, "a"), failed(0, "x"), finished(3), rewound(0, 0, 5), scheduled(0, "a"), completed(0, `1`)},
		{execStarted(`null`), execStarted(`1`), control(history.ExecutionTerminated, `"t"`), completed(0, `1`), finished(1)},
	}
	for _, s := range seeds {
		data, err := history.Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(len(s)/2), uint8(0))
	}
	fns := []Func{sequence, waitsForEvent, sleeps, retriesA, continuesAsNew, panicsAfterA,
		func(c *Context) ([]byte, error) { // a bit of everything
			a := c.CallActivity("a", "", nil, &RetryPolicy{FirstInterval: 1, MaxAttempts: 2})
			w := c.WaitForEvent("approve", 5)
			s := c.CallSubOrchestrator("child", "", "", nil, nil)
			any := c.Any(a, w, s)
			if _, err := any.Await(); err != nil {
				return nil, err
			}
			c.SendEvent("other", "ping", nil)
			if _, err := c.All(a, w, s).Await(); err != nil {
				return nil, err
			}
			return json.Marshal(any.Winner())
		},
	}
	f.Fuzz(func(t *testing.T, data []byte, split, which uint8) {
		events, err := history.Decode(data)
		if err != nil || len(events) > 200 {
			t.Skip()
		}
		k := min(int(split), len(events))
		x := New(fns[int(which)%len(fns)])
		defer x.Close()
		res, err := x.Run(events[:k], events[k:])
		var nd *NonDeterminismError
		var pe *PanicError
		switch {
		case err == nil:
			if res == nil {
				t.Fatal("no result and no error")
			}
		case errors.As(err, &nd), errors.As(err, &pe):
		default:
			t.Fatalf("error of an unexpected kind: %v", err)
		}
	})
}
