package httpapi

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// InstanceStatus is the status JSON of an instance (docs/compat/durable-functions-http.md §5). Every key but historyEvents
// is always present, null when empty: the JavaScript client throws when input or output is missing.
type InstanceStatus struct {
	Name            string          `json:"name"`
	InstanceID      string          `json:"instanceId"`
	RuntimeStatus   string          `json:"runtimeStatus"`
	Input           json.RawMessage `json:"input"`
	CustomStatus    json.RawMessage `json:"customStatus"`
	Output          json.RawMessage `json:"output"`
	CreatedTime     string          `json:"createdTime"`
	LastUpdatedTime string          `json:"lastUpdatedTime"`
	// Version is the orchestration version the instance was started with, a field of Reprise's
	// own, left out when there is none so that unversioned instances look as in the extension.
	// The JavaScript and Python clients ignore keys they do not know.
	Version string `json:"version,omitempty"`
	// HistoryEvents is present (possibly empty) only when history was asked for.
	HistoryEvents []HistoryEvent `json:"historyEvents,omitzero"`
}

// StatusOptions are the show* query flags of a status request.
type StatusOptions struct {
	ShowInput         bool // include the input, also in history events
	ShowHistoryOutput bool // include the results of history events
}

// statusTimeLayout is .NET's ToString("s") + "Z": seconds, no fraction, which clients parse.
const statusTimeLayout = "2006-01-02T15:04:05Z"

// StatusPayload builds the status JSON of inst. History is included when events is not nil and
// the instance is not Pending (a Pending instance has no history to show, as in the extension).
func StatusPayload(inst store.Instance, events []history.Event, opts StatusOptions) InstanceStatus {
	s := InstanceStatus{
		Name:            inst.Name,
		InstanceID:      inst.ID,
		RuntimeStatus:   inst.Status.String(),
		CustomStatus:    rawJSON(inst.CustomStatus),
		Output:          rawJSON(inst.Output),
		CreatedTime:     inst.CreatedAt.UTC().Format(statusTimeLayout),
		LastUpdatedTime: inst.UpdatedAt.UTC().Format(statusTimeLayout),
		Version:         inst.Version,
	}
	if opts.ShowInput {
		s.Input = rawJSON(inst.Input)
	}
	if inst.Status == store.StatusFailed && s.Output == nil {
		// The engine stores the failure message as the output; older rows may carry only the
		// failure details, and callers look for the message in output either way.
		s.Output = failureMessage(inst.Failure)
	}
	if events != nil && inst.Status != store.StatusPending {
		s.HistoryEvents = transformHistory(events, opts)
	}
	return s
}

// failureMessage returns the message of JSON-encoded failure details as a JSON string, or nil.
func failureMessage(failure []byte) json.RawMessage {
	f := history.DecodeFailure(failure)
	if f == nil || f.Message == "" {
		return nil
	}
	return jsonString(f.Message)
}

// rawJSON returns stored JSON for embedding: nil stays nil (JSON null), and bytes that are not
// valid JSON become a JSON string (whitespace-only becomes ""), as the extension does with
// unparsable stored strings, so that one bad row cannot break a listing.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return json.RawMessage(`""`)
	}
	if !json.Valid(b) {
		return jsonString(string(b))
	}
	return json.RawMessage(b)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// historyTime formats an event time as Json.NET does a DateTime: UTC with the fraction it has.
func historyTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
