package reprise

import "github.com/reprise-dev/reprise/store"

// WithPurgeHook is the retention hook (config.onPurge) for the tests of package reprise_test.
func WithPurgeHook(f func(status store.Status, n int)) Option {
	return func(c *config) { c.onPurge = f }
}
