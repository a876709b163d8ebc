package engine

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// unclaimedWatch remembers what the last look at unclaimed work found, and which names the
// engine has warned about.
type unclaimedWatch struct {
	mu      sync.Mutex
	last    map[unclaimedKey]store.Unclaimed // the previous look, to tell waiting from flowing work
	stalled map[unclaimedKey]store.Unclaimed // warned about, with the latest counts
}

type unclaimedKey struct {
	kind store.WorkKind
	name string // lower case: names match case-insensitively
}

// Unclaimed returns the work that waits for names this engine has not registered and that no
// host took between its last two looks (see Options.UnclaimedInterval), by kind and name.
func (e *Engine) Unclaimed() []store.Unclaimed {
	e.unclaimed.mu.Lock()
	defer e.unclaimed.mu.Unlock()
	out := make([]store.Unclaimed, 0, len(e.unclaimed.stalled))
	for _, u := range e.unclaimed.stalled {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b store.Unclaimed) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)))
	})
	return out
}

// unclaimedLoop looks for unclaimed work every UnclaimedInterval.
func (e *Engine) unclaimedLoop() {
	defer e.loops.Done()
	// A look in flight ends with stop, so that a hanging store cannot hold Shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(e.opts.UnclaimedInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.checkUnclaimed(ctx)
		}
	}
}

// checkUnclaimed asks the store for ready work of names the engine lacks. Work whose oldest item
// is the same as at the previous look has waited a whole interval without any host taking it:
// most likely no running host registers the name. It is logged once, when it starts waiting,
// and stays in Unclaimed until it moves or goes.
func (e *Engine) checkUnclaimed(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.UnclaimedInterval)
	defer cancel()
	rows, err := e.st.Unclaimed(ctx, e.orchNames, e.actNames)
	if err != nil {
		if !e.stopping() {
			e.log.Warn("looking for work of names this host has not registered", "err", err)
		}
		return
	}
	w := &e.unclaimed
	w.mu.Lock()
	defer w.mu.Unlock()
	now := make(map[unclaimedKey]store.Unclaimed, len(rows))
	stalled := make(map[unclaimedKey]store.Unclaimed)
	for _, u := range rows {
		k := unclaimedKey{u.Kind, strings.ToLower(u.Name)}
		now[k] = u
		if prev, ok := w.last[k]; !ok || prev.Oldest != u.Oldest {
			continue // new, or taken since the last look
		}
		stalled[k] = u
		if _, warned := w.stalled[k]; warned {
			continue
		}
		what := "an orchestrator"
		if u.Kind == store.ActivityWorkKind {
			what = "an activity"
		}
		e.log.Warn("work waits for "+what+" that this host has not registered and no host has taken: "+
			"start a host that registers it; the work is kept until then",
			"kind", u.Kind.String(), "name", u.Name, "count", u.Count, "waitedAtLeast", e.opts.UnclaimedInterval.String())
	}
	for k, u := range w.stalled {
		if _, still := stalled[k]; !still {
			e.log.Info("work no longer waits for a name this host has not registered", "kind", u.Kind.String(), "name", u.Name)
		}
	}
	w.last, w.stalled = now, stalled
}
