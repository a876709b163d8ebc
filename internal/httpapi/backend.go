// Package httpapi serves the Durable Functions HTTP management API ("webhook" API) over a Backend:
// the routes, status codes, headers and JSON shapes of Azure Durable Functions, so that the
// official clients (durable-functions for JavaScript, azure-functions-durable for Python) and
// people's curl scripts work against Reprise unchanged.
//
// The same handler answers under two base paths: /runtime/webhooks/durabletask (guarded by
// Options.Authorize, normally the system key) and /durabletask (the local RPC base of the
// JavaScript and Python clients, answered only to loopback callers).
package httpapi

import (
	"context"
	"encoding/json"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Backend is what the management API needs from the application. The root package implements it
// over its Client; errors are classified with ErrorKind.
type Backend interface {
	// Hub returns the task hub name, echoed in management URLs as taskHub.
	Hub() string
	// HasOrchestrator reports whether an orchestrator with the name is registered.
	HasOrchestrator(name string) bool

	// StartNew starts the orchestrator; instanceID "" means a new random ID, version "" none.
	// input is JSON ("null" when there is none).
	StartNew(ctx context.Context, name, instanceID, version string, input json.RawMessage) (string, error)
	// GetInstance returns the stored instance.
	GetInstance(ctx context.Context, id string) (store.Instance, error)
	// History returns the events of the instance's current execution.
	History(ctx context.Context, id string) ([]history.Event, error)
	// ListInstances returns a page of instances and the next page's token ("" after the last). A
	// malformed q.ContinuationToken should be an error of KindInvalidInput (answered with 400).
	ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error)

	// RaiseEvent delivers an external event; data is JSON, stored verbatim. KindFinished when the
	// instance has finished.
	RaiseEvent(ctx context.Context, id, name string, data json.RawMessage) error
	// Terminate, Suspend and Resume send the command; KindFinished when the instance has finished.
	Terminate(ctx context.Context, id, reason string) error
	Suspend(ctx context.Context, id, reason string) error
	Resume(ctx context.Context, id, reason string) error
	// Rewind reruns a Failed instance; KindNotFailed (or KindFinished) for any other status.
	Rewind(ctx context.Context, id, reason string) error
	// Restart starts the instance's orchestrator again with its input, under a new ID or the same
	// one, and returns the ID started.
	Restart(ctx context.Context, id string, newInstanceID bool) (string, error)
	// PurgeInstance deletes a finished instance; KindActive when it is still active.
	PurgeInstance(ctx context.Context, id string) error
	// PurgeInstances deletes the finished instances matching f and returns how many.
	PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error)

	// WaitForCompletion returns the instance once it has finished (Completed, Failed, Terminated,
	// Canceled), or ctx's error when ctx ends first.
	WaitForCompletion(ctx context.Context, id string) (store.Instance, error)

	// HasEntity reports whether the app runs entities of the name (matched case-insensitively).
	// An app that registered no entities answers true for every name: its entities, if any, run
	// in other hosts' workers (gRPC), which the management API cannot see.
	HasEntity(name string) bool
	// SignalEntity queues an operation for an entity (r.EntityID is its instance ID), creating
	// it if it does not exist.
	SignalEntity(ctx context.Context, r control.SignalRequest) error
	// GetEntity returns an entity by its instance ID: KindNotFound when no entity has it; an
	// entity without state comes back with Exists false.
	GetEntity(ctx context.Context, id string, withState bool) (control.EntityRecord, error)
	// EntityDetail is GetEntity with the state and the entity's last operations.
	EntityDetail(ctx context.Context, id string) (control.EntityRecord, error)
	// QueryEntities returns a page of entities and the next page's token ("" after the last). A
	// malformed q.ContinuationToken should be an error of KindInvalidInput.
	QueryEntities(ctx context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error)
	// CleanEntityStorage cleans one page of entities and returns what it did and the next
	// page's token.
	CleanEntityStorage(ctx context.Context, r control.CleanRequest) (control.CleanResult, error)

	// ErrorKind classifies an error returned by the methods above.
	ErrorKind(err error) ErrorKind
}

// ErrorKind is the class of a Backend error, which decides the HTTP status code.
type ErrorKind int

// Error kinds.
const (
	KindOther        ErrorKind = iota // unexpected: 500
	KindNotFound                      // no such instance
	KindExists                        // the instance ID is taken by an active instance
	KindFinished                      // the instance has finished: it takes no more events or commands
	KindActive                        // the operation needs a finished instance (purge)
	KindNotFailed                     // rewind of an instance that has not failed
	KindInvalidInput                  // bad instance ID, unregistered orchestrator, bad argument
	KindUnavailable                   // the app is not started or is shutting down
)
