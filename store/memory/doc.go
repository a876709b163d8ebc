// Package memory is an in-memory implementation of store.Store: a task hub that lives in one
// process and is gone when the process ends.
//
// It is meant for tests and for the test harness (package reprisetest), which run the real
// engine against it: no file, no server, no fsync, and a clock of the caller's choosing
// (Options.Now), so that a virtual clock decides when timers fire and leases expire. It is not
// durable and cannot be shared between processes; use store/sqlite or store/postgres for
// anything that must survive a restart.
//
// It passes the conformance suite (store/storetest) and, where the suite is silent, behaves as
// store/sqlite does: the same validation and errors, messages to missing instances dropped,
// names matched with ASCII case folding, claims served from each name in turn and oldest
// first within a name.
//
// The engine sleeps until the next timer by the wall clock (and is woken by commits). A test
// that moves the virtual clock calls Store.Wake, so that the dispatchers claim at once what
// became visible or whose lease ran out.
//
// # Locking
//
// One mutex (Store.mu) guards all data: every method takes it for its whole operation, so each
// write is atomic and isolated, as a transaction would be. Wake-ups (WorkSignal, WatchInstance)
// and the transaction observer are called after the mutex is released, so their receivers may
// call back into the store. The notifier has its own lock and is never taken while holding
// Store.mu in the other order. Byte slices and tag maps are copied on the way in and on the way
// out, so that no caller can change stored data through a slice it passed or received.
//
// # Indexes
//
// Claims do not scan the hub. Instances with inbox messages and no live lease wait in a heap
// per kind and (case-folded) name, ordered by their oldest message's visible time; activity
// tasks wait in a heap per name. A claim pops from the heaps of its names. Leases are kept in a
// heap by expiry: an instance or task whose lease runs out goes back to its ready heap at the
// next claim. Future messages are kept in a heap of timers for NextVisibleAt. Listings, counts,
// purges and the backlog scan every instance, as they are rare.
//
// The clock should not go backwards: a message that was visible once is taken off the timer
// heap, and a clock turned back would not see it as a timer again.
package memory
