package engine

import "github.com/reprise-dev/reprise/store"

// Local dispatch: an episode's activity tasks that this engine can run are committed already
// leased to it (store.TaskLease) and handed straight to its activity workers, so that a
// sequential step costs no claim transaction (and no empty claim after it).
//
// The leases are the store's ordinary task leases: renewed through held while the activity
// runs, presented by CompleteActivity (fencing), released at shutdown. If this engine dies
// before it runs them, they expire and any host claims them, as it would a claimed task that
// was never completed. Tasks are leased only while activity slots are free (a slot is taken
// for each before the commit), so that no task waits for a busy host while others are idle; the
// rest are committed unleased and wake every activity dispatcher as before.

// reserveLocal asks the commit of ep to lease the tasks this engine runs itself: those whose
// activity its Registry has, in order, as long as an activity slot is free; it takes a slot for
// each and returns how many it took.
func (e *Engine) reserveLocal(ep *store.Episode) int {
	if e.opts.DisableLocalDispatch || e.opts.Remote != nil || len(ep.Tasks) == 0 || len(e.actNames) == 0 || e.stopping() {
		return 0
	}
	var leased []int
	for i, t := range ep.Tasks {
		if _, ok := e.reg.Activity(t.Name); !ok {
			continue // another host's work (or a remote worker's): committed unleased
		}
		select {
		case e.actSlots <- struct{}{}:
			leased = append(leased, i)
			continue
		default:
		}
		break // no slot free: the rest are for whoever has one
	}
	if len(leased) == 0 {
		return 0
	}
	ep.LeaseTasks = &store.TaskLease{For: e.opts.LeaseDuration, Tasks: leased}
	return len(leased)
}

// runLocal runs the tasks the commit leased to this engine, each in one of the reserved slots,
// and gives back the slots it does not use: all of them when the commit failed (a commit whose
// reply was lost may have leased tasks all the same; they run elsewhere, or here, once the
// lease expires).
func (e *Engine) runLocal(tl *store.TaskLease, reserved int, commitErr error) {
	if reserved == 0 {
		return
	}
	var work []store.ActivityWork
	if commitErr == nil && tl != nil {
		work = tl.Leased
	}
	work = work[:min(len(work), reserved)] // a store answers no more than asked; never run more than reserved
	for _, w := range work {
		e.held.add(w.Claim())
		e.startActivity(w)
	}
	if unused := reserved - len(work); unused > 0 {
		for range unused {
			<-e.actSlots
		}
		e.slotFreed()
	}
}
