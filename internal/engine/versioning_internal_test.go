package engine

import (
	"fmt"
	"testing"
	"time"
)

// TestRejectBackoff: the delay doubles with each rejection of the same instance up to the
// longest, starts over once the instance ran here or was not seen for a while, and the map
// forgets old instances as new ones come.
func TestRejectBackoff(t *testing.T) {
	var r rejects
	now := time.Unix(1000, 0)
	first, longest := 100*time.Millisecond, time.Second
	var got []time.Duration
	for range 6 {
		d, _ := r.next("x", first, longest, now)
		got = append(got, d)
	}
	if want := fmt.Sprint([]time.Duration{100e6, 200e6, 400e6, 800e6, 1e9, 1e9}); fmt.Sprint(got) != want {
		t.Errorf("delays %v, want %v", got, want)
	}
	r.forget("x")
	if d, n := r.next("x", first, longest, now); d != first || n != 1 {
		t.Errorf("after forget: %v (#%d), want %v (#1)", d, n, first)
	}
	if d, n := r.next("x", first, longest, now.Add(3*longest)); d != first || n != 1 {
		t.Errorf("after a long quiet: %v (#%d), want %v (#1)", d, n, first)
	}
	for i := range 2000 {
		r.next(fmt.Sprint("old", i), first, longest, now)
	}
	r.next("new", first, longest, now.Add(time.Hour))
	if len(r.m) > 1100 {
		t.Errorf("%d instances remembered after the old ones expired", len(r.m))
	}
}
