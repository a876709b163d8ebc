package history

import (
	"reflect"
	"testing"
	"time"
)

func TestEntityTypes(t *testing.T) {
	for _, tc := range []struct {
		t          Type
		n          int
		name       string
		scheduling bool
	}{
		{EntityOperationSignaled, 23, "EntityOperationSignaled", true},
		{EntityOperationCalled, 24, "EntityOperationCalled", true},
		{EntityOperationCompleted, 25, "EntityOperationCompleted", false},
		{EntityOperationFailed, 26, "EntityOperationFailed", false},
		{EntityLockRequested, 27, "EntityLockRequested", true},
		{EntityLockGranted, 28, "EntityLockGranted", false},
		{EntityUnlockSent, 29, "EntityUnlockSent", true},
		{Type(22), 22, "EventType(22)", false},
		{Type(30), 30, "EventType(30)", false},
	} {
		if int(tc.t) != tc.n {
			t.Errorf("%s = %d, want %d", tc.name, int(tc.t), tc.n)
		}
		if got := tc.t.String(); got != tc.name {
			t.Errorf("Type(%d).String() = %q, want %q", tc.n, got, tc.name)
		}
		if got := tc.t.Scheduling(); got != tc.scheduling {
			t.Errorf("%s.Scheduling() = %v, want %v", tc.name, got, tc.scheduling)
		}
	}
}

func TestEntityEventEncoding(t *testing.T) {
	e := New(EntityLockRequested, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e.RequestID, e.LockSet, e.Position = "s1", []string{"@a@1", "@b@2"}, 1
	e.Parent = &Parent{InstanceID: "orch", ExecutionID: "x1"}
	data, err := EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":-1,"type":27,"ts":"2026-01-02T03:04:05Z","parent":{"instanceId":"orch","executionId":"x1","taskId":0},"requestId":"s1","lockSet":["@a@1","@b@2"],"position":1}`
	if string(data) != want {
		t.Errorf("encoded\n%s\nwant\n%s", data, want)
	}
	back, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("decoded %+v, want %+v", back, e)
	}
}

func TestOpenLocks(t *testing.T) {
	req := func(section string, set ...string) Event {
		return Event{Type: EntityLockRequested, RequestID: section, LockSet: set, InstanceID: set[0]}
	}
	unlock := func(section, entity string) Event {
		return Event{Type: EntityUnlockSent, RequestID: section, InstanceID: entity}
	}
	for _, tc := range []struct {
		name   string
		events []Event
		want   []Lock
	}{
		{"none", []Event{{Type: ExecutionStarted}, {Type: TaskScheduled}}, nil},
		{"requested, not granted", []Event{req("s1", "@a@1", "@b@1")},
			[]Lock{{"s1", []string{"@a@1", "@b@1"}}}},
		{"granted", []Event{req("s1", "@a@1"), {Type: EntityLockGranted, RequestID: "s1"}},
			[]Lock{{"s1", []string{"@a@1"}}}},
		{"released", []Event{req("s1", "@a@1", "@b@1"), {Type: EntityLockGranted, RequestID: "s1"},
			unlock("s1", "@a@1"), unlock("s1", "@b@1")}, nil},
		{"released, then another", []Event{req("s1", "@a@1"), unlock("s1", "@a@1"), req("s2", "@b@1")},
			[]Lock{{"s2", []string{"@b@1"}}}},
		{"in request order", []Event{req("s2", "@b@1"), req("s1", "@a@1")},
			[]Lock{{"s2", []string{"@b@1"}}, {"s1", []string{"@a@1"}}}},
		{"unlock of another section", []Event{req("s1", "@a@1"), unlock("s9", "@a@1")},
			[]Lock{{"s1", []string{"@a@1"}}}},
	} {
		if got := OpenLocks(tc.events); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: OpenLocks = %v, want %v", tc.name, got, tc.want)
		}
	}
}
