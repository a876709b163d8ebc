package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

// testSettings checks Setting: a missing setting reads as nil, init is stored once and then
// returned to everyone, racing initialisers agree (on one store and on two nodes of the hub),
// hubs keep their own, and purges leave settings alone.
func (s suite) testSettings(t *testing.T) {
	st := s.open(t)
	ctx := ctxOf(t)
	if v, err := st.Setting(ctx, "keys/master", nil); err != nil || v != nil {
		t.Fatalf("missing setting = %q, %v; want nil, nil", v, err)
	}
	if v, err := st.Setting(ctx, "keys/master", []byte("first")); err != nil || string(v) != "first" {
		t.Fatalf("Setting with init = %q, %v; want first", v, err)
	}
	if v, err := st.Setting(ctx, "keys/master", []byte("second")); err != nil || string(v) != "first" {
		t.Fatalf("Setting of a stored setting with another init = %q, %v; want the stored first", v, err)
	}
	if v, err := st.Setting(ctx, "keys/master", nil); err != nil || string(v) != "first" {
		t.Fatalf("Setting without init = %q, %v; want first", v, err)
	}
	if v, err := st.Setting(ctx, "keys/system", nil); err != nil || v != nil {
		t.Fatalf("another setting = %q, %v; want nil: settings are separate", v, err)
	}
	mustCreate(t, st, "done")
	populate(t, st, "done", store.StatusCompleted)
	if _, err := st.PurgeInstances(ctx, store.PurgeFilter{}); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Setting(ctx, "keys/master", nil); err != nil || string(v) != "first" {
		t.Fatalf("after a purge: %q, %v; want first", v, err)
	}

	race := func(t *testing.T, stores []store.Store, name string) {
		const n = 8
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = stores[i%len(stores)].Setting(ctx, name, fmt.Appendf(nil, "init-%d", i))
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("racing Setting %d: %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("racing initialisers got %q and %q: all must get the value stored first", got[0], got[i])
			}
		}
	}
	race(t, []store.Store{st}, "raced")

	if s.opts.OpenHubs == nil {
		return
	}
	stores := s.opts.OpenHubs(t, []string{"hub-s", "hub-s", "hub-t"})
	race(t, stores[:2], "keys/master")
	a, _ := stores[0].Setting(ctx, "keys/master", nil)
	if v, err := stores[2].Setting(ctx, "keys/master", nil); err != nil || v != nil {
		t.Fatalf("hub-t reads hub-s's setting: %q, %v", v, err)
	}
	if v, err := stores[2].Setting(ctx, "keys/master", []byte("t")); err != nil || string(v) != "t" {
		t.Fatalf("hub-t's own setting = %q, %v", v, err)
	}
	if v, _ := stores[1].Setting(ctx, "keys/master", nil); !bytes.Equal(v, a) {
		t.Fatalf("hub-s's setting changed to %q after hub-t stored its own", v)
	}
}
