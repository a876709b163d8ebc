package reprise

import (
	"fmt"
	"strings"
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

// checkID checks the ID of an instance that is looked up (not created) against the store's rule:
// not empty, UTF-8, no NUL, at most store.MaxKeyBytes (derived sub-orchestration IDs may pass
// the 256 bytes of a new ID).
func checkID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidInstanceID)
	case len(id) > store.MaxKeyBytes:
		return fmt.Errorf("%w: it is %d bytes long, the limit is %d", ErrInvalidInstanceID, len(id), store.MaxKeyBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w %q: it is not valid UTF-8", ErrInvalidInstanceID, id)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w %q: it contains a NUL character", ErrInvalidInstanceID, id)
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
