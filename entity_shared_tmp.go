package reprise

// TEMPORARY: EntityID and SignalOption until branch ent-replay lands with its own (entityid.go,
// entity_orchestration.go); delete this file when merging it.

import (
	"time"

	"github.com/reprise-dev/reprise/store"
)

type EntityID struct{ Name, Key string }

func (id EntityID) String() string { return store.EntityInstanceID(id.Name, id.Key) }

type SignalOption interface{ applySignal(*signalConfig) }

type signalConfig struct{ at time.Time }

type signalFunc func(*signalConfig)

func (f signalFunc) applySignal(c *signalConfig) { f(c) }

func WithSignalTime(t time.Time) SignalOption { return signalFunc(func(c *signalConfig) { c.at = t }) }

func signalConfigOf(opts []SignalOption) signalConfig {
	var c signalConfig
	for _, o := range opts {
		o.applySignal(&c)
	}
	return c
}
