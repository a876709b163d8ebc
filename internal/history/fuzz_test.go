package history

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to the decoders of stored history chunks, inbox messages and
// failure details. They must not panic; what decodes must encode again, and decoding that
// encoding must give the same encoding (stored histories survive being read and written back).
func FuzzDecode(f *testing.F) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	full := []Event{
		{ID: -1, Type: OrchestratorStarted, Time: ts},
		{ID: -1, Type: ExecutionStarted, Time: ts, Name: "o", InstanceID: "i", ExecutionID: "x", Input: json.RawMessage(`{"a":[1,"b"]}`),
			Parent:  &Parent{InstanceID: "p", ExecutionID: "px", TaskID: 3, Name: "po"},
			Carried: []Event{{ID: -1, Type: EventRaised, Time: ts, Name: "e", Input: json.RawMessage(`1`)}}},
		{ID: 0, Type: TaskScheduled, Time: ts, Name: "a", Input: json.RawMessage(`"in"`), Attempt: 2},
		{ID: -1, Type: TaskFailed, Time: ts, TaskID: 0, Failure: &Failure{Type: "T", Message: "m", Details: json.RawMessage(`{"k":1}`),
			StackTrace: "s", NonRetriable: true, Inner: &Failure{Message: "inner"}}},
		{ID: 1, Type: TimerCreated, Time: ts, FireAt: ts.Add(time.Hour), Retry: "Retry Attempt 2"},
		{ID: -1, Type: ExecutionRewound, Time: ts, Voided: []int32{0}, Input: json.RawMessage(`"why"`)},
		{ID: -1, Type: ExecutionCompleted, Time: ts, Status: 3, Result: json.RawMessage(`null`)},
		{ID: -1, Type: ExecutionTerminated, Time: ts, Recursive: true},
	}
	chunk, err := Encode(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(chunk)
	one, _ := EncodeEvent(full[3])
	f.Add(one)
	for _, s := range []string{`[]`, `null`, `{}`, `[{"type":99,"ts":"x"}]`, `[{"id":1e99}]`, `[{"ts":"2026-13-40T00:00:00Z"}]`,
		`{"message":"m","inner":{"inner":{}}}`, `"text"`, "\xff", `[{"input":"\ud800"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if events, err := Decode(data); err == nil {
			stable(t, events, func(b []byte) (any, error) { return Decode(b) }, func(v any) ([]byte, error) { return Encode(v.([]Event)) })
		}
		if e, err := DecodeEvent(data); err == nil {
			stable(t, e, func(b []byte) (any, error) { return DecodeEvent(b) }, func(v any) ([]byte, error) { return EncodeEvent(v.(Event)) })
		}
		if _, err := DecodeAll([][]byte{data, data}); err == nil {
			if _, err := Decode(data); err != nil {
				t.Fatalf("DecodeAll accepts what Decode refuses: %v", err)
			}
		}
		if fl := DecodeFailure(data); fl != nil {
			_ = fl.Text()
			if _, err := EncodeFailure(fl); err != nil {
				t.Fatalf("decoded failure %+v does not encode: %v", fl, err)
			}
		}
	})
}

// stable checks that v encodes, and that decoding its encoding encodes to the same bytes.
func stable(t *testing.T, v any, decode func([]byte) (any, error), encode func(any) ([]byte, error)) {
	t.Helper()
	first, err := encode(v)
	if err != nil {
		// Input and Result are kept raw; json.Unmarshal has checked them, so they re-encode.
		t.Fatalf("decoded %+v does not encode: %v", v, err)
	}
	back, err := decode(first)
	if err != nil {
		t.Fatalf("the encoding %s does not decode: %v", first, err)
	}
	second, err := encode(back)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("encoding not stable:\n%s\n%s (%v)", first, second, err)
	}
}
