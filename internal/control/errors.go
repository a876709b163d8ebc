package control

import (
	"errors"

	"github.com/reprise-dev/reprise/store"
)

// The sentinels of the control operations. The root package re-exports them as the same values
// (reprise.ErrInstanceFinished is ErrInstanceFinished), so errors.Is holds across the layers;
// those of the store are the store's own, so what a store refuses tests the same.
var (
	ErrInstanceNotFound  = store.ErrNotFound
	ErrInstanceExists    = store.ErrInstanceExists
	ErrInstanceActive    = store.ErrInstanceActive
	ErrInvalidArgument   = store.ErrInvalidArgument
	ErrInvalidToken      = store.ErrInvalidToken
	ErrInstanceFinished  = errors.New("instance has finished")
	ErrNotFailed         = errors.New("instance is not in the Failed state")
	ErrNotRegistered     = errors.New("not registered")
	ErrNotStarted        = errors.New("app not running: call App.Start first (after Shutdown, create a new App)")
	ErrInvalidInstanceID = errors.New("invalid instance ID")
)

// Kind is the class of an error of a control operation: what a front end answers for it (an
// HTTP status code, a gRPC status).
type Kind int

// Error kinds.
const (
	KindOther        Kind = iota // unexpected
	KindNotFound                 // no such instance
	KindExists                   // the instance ID is taken (see store.ReusePolicy)
	KindFinished                 // the instance has finished: it takes no more events or commands
	KindActive                   // the operation needs a finished instance (purge)
	KindNotFailed                // rewind of an instance that has not failed
	KindInvalidInput             // bad instance ID, unregistered orchestrator, bad argument or token
	KindUnavailable              // not started, or shutting down
)

// Classify returns the kind of err, by the sentinels it wraps.
func Classify(err error) Kind {
	switch {
	case errors.Is(err, ErrInstanceFinished):
		return KindFinished
	case errors.Is(err, ErrInstanceNotFound):
		return KindNotFound
	case errors.Is(err, ErrInstanceExists):
		return KindExists
	case errors.Is(err, ErrInstanceActive):
		return KindActive
	case errors.Is(err, ErrNotFailed):
		return KindNotFailed
	case errors.Is(err, ErrInvalidInstanceID), errors.Is(err, ErrNotRegistered), errors.Is(err, ErrInvalidArgument),
		errors.Is(err, ErrInvalidToken):
		return KindInvalidInput
	case errors.Is(err, ErrNotStarted), errors.Is(err, store.ErrClosed):
		return KindUnavailable
	}
	return KindOther
}
