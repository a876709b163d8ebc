package control

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// Limits on what the control operations take, so that every front end (the Client, the HTTP
// API, the dashboard, the gRPC service, orchestrator code) refuses the same input with the same
// message.
const (
	MaxInstanceIDBytes = 256               // of a new instance, as Durable Functions
	MaxNameBytes       = store.MaxKeyBytes // orchestrator and event names, ID prefixes
	MaxReasonBytes     = 64 << 10          // terminate, suspend, resume and rewind reasons
	MaxVersionBytes    = store.MaxKeyBytes // orchestration versions
	MaxTagsBytes       = store.MaxTagsBytes
	MaxTraceBytes      = 4 << 10 // each field of a trace context (W3C tracestate is usually far shorter)
)

// CheckStartLabels checks what a start carries besides its name and input: the version
// (store.CheckVersion), the tags (store.CheckTags) and the parent trace context (each field UTF-8
// without NUL, at most MaxTraceBytes). Errors wrap ErrInvalidArgument.
func CheckStartLabels(version string, tags map[string]string, trace *history.TraceContext) error {
	if err := store.CheckVersion(version); err != nil {
		return err
	}
	if err := store.CheckTags(tags); err != nil {
		return err
	}
	if trace != nil {
		for _, f := range [...]struct{ what, s string }{
			{"traceparent", trace.TraceParent}, {"tracestate", trace.TraceState}, {"trace span ID", trace.SpanID},
		} {
			if err := CheckText(f.what, f.s, MaxTraceBytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidateInstanceID checks an instance ID chosen for a new instance against the Durable Functions
// rules, and against what would make its management URLs lead elsewhere ("." and "..").
func ValidateInstanceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: it is empty", ErrInvalidInstanceID)
	case len(id) > MaxInstanceIDBytes:
		return fmt.Errorf("%w: it is %d bytes long, the limit is %d", ErrInvalidInstanceID, len(id), MaxInstanceIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w %q: it is not valid UTF-8", ErrInvalidInstanceID, id)
	case id == "." || id == "..":
		return fmt.Errorf("%w %q: \".\" and \"..\" are path steps in URLs, so the instance's URLs would lead elsewhere", ErrInvalidInstanceID, id)
	case strings.HasPrefix(id, "@"):
		return fmt.Errorf("%w %q: IDs starting with '@' are reserved for entities", ErrInvalidInstanceID, id)
	case strings.ContainsAny(id, `/\?#`):
		return fmt.Errorf("%w %q: it must not contain '/', '\\', '?' or '#'", ErrInvalidInstanceID, id)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%w %q: it must not contain control characters", ErrInvalidInstanceID, id)
	}
	return nil
}

// CheckID checks the ID of an instance that is looked up (not created) against the store's rule:
// not empty, UTF-8, no NUL, at most store.MaxKeyBytes (derived sub-orchestration IDs may pass
// the 256 bytes of a new ID).
func CheckID(id string) error {
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

// CheckText checks a name or a reason (what names it in the error): UTF-8 without NUL, at most
// maxBytes long. The error wraps ErrInvalidArgument.
func CheckText(what, s string, maxBytes int) error { return store.CheckText(what, s, maxBytes) }

// CheckPayload checks JSON about to be stored: encoding/json passes a json.RawMessage through
// without checking its strings, and JSON that is not UTF-8 would be echoed to every reader.
func CheckPayload(what string, data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: the %s is not valid UTF-8 (JSON text must be UTF-8)", ErrInvalidArgument, what)
	}
	return nil
}
