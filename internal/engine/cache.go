package engine

import (
	"container/list"
	"sync"

	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// cached is a live execution kept between episodes.
type cached struct {
	instanceID  string
	executionID string
	historyLen  int // the instance's HistoryLen the execution has seen
	exec        *replay.Execution
	span        orchSpan // the execution's span, known from its ExecutionStarted event
	// inst is the instance as the execution's last episode committed it (HistoryLen
	// historyLen): what a merged completion commits its next episode on (merged.go).
	inst store.Instance
}

// cache is a bounded LRU of live executions. An entry is taken out for the length of an episode
// and put back after its commit, so an execution is never used by two episodes at once.
type cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front = most recently used
	byID  map[string]*list.Element
	// closed is set at shutdown: an episode that ends later (it ignored the deadline) must not
	// leave its execution here.
	closed bool
	// release closes an execution the cache drops (the engine's closeExec, which logs).
	release func(*replay.Execution)
}

func newCache(max int, release func(*replay.Execution)) *cache {
	return &cache{max: max, order: list.New(), byID: map[string]*list.Element{}, release: release}
}

// take removes and returns the instance's execution if it is current (same execution, same
// history length); a stale one is closed.
func (c *cache) take(instanceID, executionID string, historyLen int) (*replay.Execution, orchSpan) {
	c.mu.Lock()
	el, ok := c.byID[instanceID]
	if ok {
		c.order.Remove(el)
		delete(c.byID, instanceID)
	}
	c.mu.Unlock()
	if !ok {
		return nil, orchSpan{}
	}
	e := el.Value.(*cached)
	if e.executionID != executionID || e.historyLen != historyLen {
		c.release(e.exec)
		return nil, orchSpan{}
	}
	return e.exec, e.span
}

// takeLive removes and returns the instance's entry if it is of the execution executionID,
// whatever its history length: the caller fences its commit on the length (a merged
// completion). An entry of another execution is left in place.
func (c *cache) takeLive(instanceID, executionID string) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[instanceID]
	if !ok || el.Value.(*cached).executionID != executionID {
		return nil
	}
	c.order.Remove(el)
	delete(c.byID, instanceID)
	return el.Value.(*cached)
}

// put keeps an execution, evicting (and closing) the least recently used beyond the bound.
func (c *cache) put(e *cached) {
	if c.max <= 0 {
		c.release(e.exec)
		return
	}
	var evicted []*cached
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.release(e.exec)
		return
	}
	if old, ok := c.byID[e.instanceID]; ok {
		c.order.Remove(old)
		evicted = append(evicted, old.Value.(*cached))
	}
	c.byID[e.instanceID] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		v := last.Value.(*cached)
		delete(c.byID, v.instanceID)
		evicted = append(evicted, v)
	}
	c.mu.Unlock()
	for _, v := range evicted {
		c.release(v.exec)
	}
}

// close closes every cached execution, and those put later.
func (c *cache) close() {
	c.mu.Lock()
	c.closed = true
	var all []*cached
	for _, el := range c.byID {
		all = append(all, el.Value.(*cached))
	}
	c.byID = map[string]*list.Element{}
	c.order.Init()
	c.mu.Unlock()
	for _, v := range all {
		c.release(v.exec)
	}
}

// closeExec closes an execution. Its orchestrator's deferred calls are bounded by the deadlock
// timeout (replay's Close abandons a goroutine that blocks in them), so the episode, and the slot
// it holds, never waits on orchestrator code for ever; the abandoned goroutine is logged.
func (e *Engine) closeExec(x *replay.Execution) {
	if err := x.Close(); err != nil {
		c := x.Context()
		e.log.Error("orchestrator goroutine abandoned: its deferred calls block", "instanceId", c.InstanceID(), "name", c.Name(), "err", err)
	}
}
