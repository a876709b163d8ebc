package reprise

import (
	"fmt"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/store"
)

// Limits on what the Client takes, so that every front end (the HTTP API, the CLI, the
// dashboard, user code) refuses the same input with the same message.
const (
	maxInstanceIDBytes = 256               // as Durable Functions
	maxNameBytes       = store.MaxKeyBytes // orchestrator and event names, ID prefixes
	maxReasonBytes     = 64 << 10          // terminate, suspend, resume and rewind reasons
)

// checkID checks the ID of an instance that is looked up (not created): the store's rule
// (UTF-8, no NUL, not empty, at most store.MaxKeyBytes; derived sub-orchestration IDs may pass
// 256 bytes), reported as ErrInvalidInstanceID.
func checkID(id string) error {
	if err := store.CheckID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInstanceID, err)
	}
	return nil
}

// checkText checks a name or a reason (what names it in the error): UTF-8 without NUL, at most
// maxBytes long. The error wraps ErrInvalidArgument.
func checkText(what, s string, maxBytes int) error {
	return store.CheckText(what, s, maxBytes) // store.ErrInvalidArgument is ErrInvalidArgument
}

// checkPayload checks JSON about to be stored: encoding/json passes a json.RawMessage through
// without checking its strings, and JSON that is not UTF-8 would be echoed to every reader.
func checkPayload(what string, data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: the %s is not valid UTF-8 (JSON text must be UTF-8)", ErrInvalidArgument, what)
	}
	return nil
}
