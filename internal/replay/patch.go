package replay

import "github.com/reprise-dev/reprise/internal/history"

// IsPatched reports whether the execution takes the patched path at the patch name: true when
// the call is reached as new work (not replaying), and then recorded in the history as a
// PatchApplied event; while replaying, true only if the history has that event, so that an
// execution that passed this point before the patch was deployed keeps its old path. The first
// answer for a name holds for the rest of the execution. Names are compared exactly.
//
// Replaying means applying the events an earlier episode committed (Run's old events): the code
// that runs then ran before, when those events were new. A cached execution is never replaying.
func (c *Context) IsPatched(name string) bool {
	if v, ok := c.patches[name]; ok {
		return v
	}
	v := c.marked[name]
	if !v && !c.replaying {
		v = true
		m := history.New(history.PatchApplied, c.now)
		m.Name = name
		c.markers = append(c.markers, m)
	}
	if c.patches == nil {
		c.patches = map[string]bool{}
	}
	c.patches[name] = v
	return v
}

// notePatches records the names of the PatchApplied events in the history about to be replayed.
// Markers are looked up by name over the whole history, not matched in order: a marker is
// written at the end of its episode, after events that the code reaching it may come before,
// and a marker the code no longer asks for (a patch removed) is no divergence.
func (c *Context) notePatches(old []history.Event) {
	for _, e := range old {
		if e.Type != history.PatchApplied {
			continue
		}
		if c.marked == nil {
			c.marked = map[string]bool{}
		}
		c.marked[e.Name] = true
	}
}
