package history

import (
	"encoding/json"
	"testing"
)

func TestFailureText(t *testing.T) {
	for _, tc := range []struct {
		f    *Failure
		want string
	}{
		{nil, "<no message>"},
		{&Failure{}, "<no message>"},
		{&Failure{Message: "disk full"}, "disk full"},
		{&Failure{Type: "*fs.PathError", Message: "open x: no such file"}, "*fs.PathError: open x: no such file"},
		{&Failure{Type: "panic"}, "panic: <no message>"},
	} {
		if got := tc.f.Text(); got != tc.want {
			t.Errorf("%+v: Text() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestFailureEncoding(t *testing.T) {
	f := &Failure{Type: "TaskFailed", Message: "outer", Details: json.RawMessage(`{"code":7}`), StackTrace: "s",
		NonRetriable: true, Inner: &Failure{Type: "panic", Message: "inner"}}
	data, err := EncodeFailure(f)
	if err != nil {
		t.Fatal(err)
	}
	back := DecodeFailure(data)
	again, _ := EncodeFailure(back)
	if string(again) != string(data) {
		t.Errorf("round trip: %s, want %s", again, data)
	}
	if data, err := EncodeFailure(nil); data != nil || err != nil {
		t.Errorf("EncodeFailure(nil) = %q, %v", data, err)
	}
	if _, err := EncodeFailure(&Failure{Message: "m", Details: json.RawMessage(`{not json`)}); err == nil {
		t.Error("details that are not JSON encode without an error")
	}

	// What instances may hold besides the engine's details: shown, not dropped.
	for _, tc := range []struct {
		stored string
		want   *Failure
	}{
		{"", nil},
		{"null", nil},
		{` null `, nil},
		{`{"type":"T","message":"m"}`, &Failure{Type: "T", Message: "m"}},
		{`{"message":"only a message"}`, &Failure{Message: "only a message"}},
		{`"a plain string"`, &Failure{Message: "a plain string"}},
		{`{"code":7}`, &Failure{Message: `{"code":7}`}},
		{`not json at all`, &Failure{Message: "not json at all"}},
	} {
		got := DecodeFailure([]byte(tc.stored))
		if (got == nil) != (tc.want == nil) || got != nil && (got.Type != tc.want.Type || got.Message != tc.want.Message) {
			t.Errorf("DecodeFailure(%q) = %+v, want %+v", tc.stored, got, tc.want)
		}
	}
}
