package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
)

// The entity routes (route rows 12-15), and one of Reprise's own: POST entities/$clean.
//
//	GET    entities[/{name}]        a page of entities (lastOperationTimeFrom/To, top, fetchState)
//	GET    entities/{name}/{key}    the entity's state; ?detail=true (Reprise) its lock and backlog too
//	POST   entities/{name}/{key}    signal the operation op with the body as its input
//	DELETE entities/{name}/{key}    signal "delete"
//	POST   entities/$clean          clean entity storage (Reprise; the master key under WebhookBase)

// cleanSegment is the second segment of the clean route. No signal can be addressed to it, since
// a signal needs a name and a key.
const cleanSegment = "$clean"

// emptyKey is how a URL names the empty key, which a path segment cannot hold.
const emptyKey = "$"

// deleteOperation is the operation DELETE signals: the implicit one that removes the state.
const deleteOperation = "delete"

// adminMessage is the body of a 401 on a route that needs the master key.
const adminMessage = "Cleaning entity storage requires the master key: pass it as the code query parameter or the x-functions-key header."

// entities dispatches the entity routes; it reports false when none matches (404).
func (a *API) entities(w http.ResponseWriter, r *http.Request, base string, segs []string, q query) bool {
	switch m := r.Method; {
	case len(segs) == 1 && m == http.MethodGet:
		a.listEntities(w, r, q, "")
	case len(segs) == 2 && m == http.MethodGet:
		a.listEntities(w, r, q, segs[1])
	case len(segs) == 2 && m == http.MethodPost && segs[1] == cleanSegment:
		if base == WebhookBase && a.authorizeAdmin != nil && !a.authorizeAdmin(r) {
			writeError(w, http.StatusUnauthorized, errorBody{Message: adminMessage})
			return true
		}
		a.cleanEntities(w, r, q)
	case len(segs) == 3 && m == http.MethodGet:
		a.getEntity(w, r, q, segs[1], segs[2])
	case len(segs) == 3 && m == http.MethodPost:
		a.signalEntity(w, r, segs[1], segs[2], q.first("op"), true)
	case len(segs) == 3 && m == http.MethodDelete:
		a.signalEntity(w, r, segs[1], segs[2], deleteOperation, false)
	default:
		return false
	}
	return true
}

// entityPart checks an entity's name or key as it comes in a URL, with the extension's rule for
// keys (no '/', '\', '#', '?' or control characters), which keeps the entity's URLs its own.
func entityPart(what, s string) error {
	if strings.ContainsAny(s, `/\#?`) {
		return fmt.Errorf("the entity %s %q must not contain '/', '\\', '#' or '?'", what, s)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("the entity %s %q must not contain control characters", what, s)
	}
	return nil
}

// entityInstanceID checks the name and key of a URL and returns the entity's instance ID. The key
// "$" is the empty key.
func entityInstanceID(name, key string) (string, error) {
	if key == emptyKey {
		key = ""
	}
	if err := entityPart("name", name); err != nil {
		return "", err
	}
	if err := entityPart("key", key); err != nil {
		return "", err
	}
	return control.EntityInstanceID(name, key)
}

// getEntity handles GET entities/{name}/{key} (route row 12): 200 with the state as the body, or
// 404 without a body for an entity that does not exist (never signalled, or without state).
func (a *API) getEntity(w http.ResponseWriter, r *http.Request, q query, name, key string) {
	detail, err := q.boolean("detail", false)
	if err != nil {
		badRequest(w, err)
		return
	}
	id, err := entityInstanceID(name, key)
	if err != nil {
		badRequest(w, err)
		return
	}
	if detail {
		rec, err := a.backend.EntityDetail(r.Context(), id)
		if err != nil {
			a.fail(w, r, id, err)
			return
		}
		WriteJSON(w, http.StatusOK, entityDetailPayload(rec))
		return
	}
	rec, err := a.backend.GetEntity(r.Context(), id, true)
	if err != nil {
		a.fail(w, r, id, err)
		return
	}
	state := rawJSON(rec.State)
	if !rec.Exists || state == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	WriteJSON(w, http.StatusOK, state)
}

// signalEntity handles POST entities/{name}/{key} (route row 14) and DELETE (row 15): 202 without
// a body once the signal is queued. withBody says whether the body is the operation's input.
func (a *API) signalEntity(w http.ResponseWriter, r *http.Request, name, key, op string, withBody bool) {
	id, err := entityInstanceID(name, key)
	if err != nil {
		badRequest(w, err)
		return
	}
	if err := control.CheckText("operation name (op)", op, control.MaxNameBytes); err != nil {
		badRequest(w, err)
		return
	}
	var input json.RawMessage
	if withBody {
		var ok bool
		if input, ok = a.readSignalInput(w, r); !ok {
			return
		}
	}
	if !a.backend.HasEntity(name) {
		writeError(w, http.StatusBadRequest, errorBody{
			Message:          "One or more of the arguments submitted is incorrect",
			ExceptionMessage: "The function '" + name + "' doesn't exist or is not an entity function registered with this app.",
			ExceptionType:    argumentException,
		})
		return
	}
	req := control.SignalRequest{EntityID: id, Operation: op, Input: input, Trace: traceContext(r.Header)}
	if err := a.backend.SignalEntity(r.Context(), req); err != nil {
		a.fail(w, r, id, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// traceContext returns the W3C trace context of a request (the JavaScript client sends one with
// signalEntity when a span is active), so that the operation's span joins the caller's trace;
// nil when there is none. A malformed traceparent is ignored, as W3C Trace Context says, and so is
// a tracestate that could not be stored.
func traceContext(h http.Header) *history.TraceContext {
	tp := strings.TrimSpace(h.Get("traceparent"))
	if !validTraceParent(tp) {
		return nil
	}
	tc := &history.TraceContext{TraceParent: tp}
	if ts := strings.TrimSpace(h.Get("tracestate")); control.CheckText("tracestate", ts, control.MaxTraceBytes) == nil {
		tc.TraceState = ts
	}
	return tc
}

// validTraceParent checks the form version-traceid-parentid-flags: 2, 32, 16 and 2 lower-case
// hex digits, version not ff, IDs not all zero. Later versions may append fields after a '-'.
func validTraceParent(tp string) bool {
	if len(tp) < 55 || len(tp) > control.MaxTraceBytes || len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-') || !utf8.ValidString(tp) {
		return false
	}
	parts := strings.SplitN(tp[:55], "-", 4)
	if len(parts) != 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			if c := p[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	zero := func(s string) bool { return strings.Trim(s, "0") == "" }
	return parts[0] != "ff" && !zero(parts[1]) && !zero(parts[2])
}

// readSignalInput reads the input of a signal as the extension does: none for an empty body; the
// JSON of an application/json body, which must parse; the text of any other body, as a JSON
// string. It answers 400 or 413 itself and then reports false.
func (a *API) readSignalInput(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	body, ok := a.readBody(w, r)
	if !ok {
		return nil, false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := err == nil && mediaType == "application/json"
	if isJSON {
		body = bytes.TrimSpace(body)
	}
	if len(body) == 0 {
		return nil, true
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, errorBody{Message: "Could not parse the content: " + notUTF8Message, ExceptionType: jsonReaderException})
		return nil, false
	}
	if !isJSON {
		return jsonString(string(body)), true
	}
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		writeError(w, http.StatusBadRequest, errorBody{
			Message:       "Could not parse JSON content: " + err.Error(),
			ExceptionType: jsonReaderException,
		})
		return nil, false
	}
	return body, true
}

// EntityID is the ID of an entity in the JSON of the entity routes.
type EntityID struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// EntityStatus is one entity of GET entities: the state is null unless fetchState=true.
type EntityStatus struct {
	EntityID          EntityID        `json:"entityId"`
	LastOperationTime string          `json:"lastOperationTime"`
	State             json.RawMessage `json:"state"`
}

// EntityDetail is the answer to GET entities/{name}/{key}?detail=true, Reprise's own: what
// people look at when an entity seems stuck. It answers for an entity without state too
// (exists false), which may still hold a lock or a backlog.
type EntityDetail struct {
	EntityID          EntityID          `json:"entityId"`
	Exists            bool              `json:"exists"`
	State             json.RawMessage   `json:"state"`
	LastOperationTime string            `json:"lastOperationTime"`
	LockedBy          *string           `json:"lockedBy"` // the orchestration holding the lock; null when free
	Backlog           int               `json:"backlog"`  // messages waiting behind the lock
	RecentOperations  []EntityOperation `json:"recentOperations"`
}

// EntityOperation is one of an entity's last operations, oldest first.
type EntityOperation struct {
	Time      string `json:"time"`
	Operation string `json:"operation"`
	RequestID string `json:"requestId"`
	Caller    string `json:"caller,omitempty"` // the calling orchestration; absent for a signal
	Failed    bool   `json:"failed"`
}

func entityStatusPayload(rec control.EntityRecord, withState bool) EntityStatus {
	s := EntityStatus{
		EntityID:          EntityID{Name: rec.Name, Key: rec.Key},
		LastOperationTime: entityTime(rec.LastModified),
	}
	if withState {
		s.State = rawJSON(rec.State)
	}
	return s
}

func entityDetailPayload(rec control.EntityRecord) EntityDetail {
	d := EntityDetail{
		EntityID:          EntityID{Name: rec.Name, Key: rec.Key},
		Exists:            rec.Exists,
		State:             rawJSON(rec.State),
		LastOperationTime: entityTime(rec.LastModified),
		Backlog:           rec.Backlog,
		RecentOperations:  make([]EntityOperation, 0, len(rec.Ops)),
	}
	if rec.LockedBy != "" {
		d.LockedBy = &rec.LockedBy
	}
	for _, op := range rec.Ops {
		d.RecentOperations = append(d.RecentOperations, EntityOperation{
			Time: entityTime(op.Time), Operation: op.Name, RequestID: op.RequestID, Caller: op.Caller, Failed: op.Failed,
		})
	}
	return d
}

// entityTime formats a last operation time as the extension does: UTC with its fraction.
func entityTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// listEntities handles GET entities[/{name}] (route row 13). As for instances, the continuation
// header is always in the answer, empty on the last page.
func (a *API) listEntities(w http.ResponseWriter, r *http.Request, q query, name string) {
	eq := control.EntityQuery{Name: name, ContinuationToken: r.Header.Get(continuationHeader), MaxBytes: a.maxPage}
	var err error
	if name != "" {
		_, err = entityInstanceID(name, "")
	}
	if err == nil {
		eq.LastModifiedFrom, _, err = q.time("lastOperationTimeFrom")
	}
	if err == nil {
		eq.LastModifiedTo, _, err = q.time("lastOperationTimeTo")
	}
	if err == nil {
		eq.WithState, err = q.boolean("fetchState", false)
	}
	if err == nil {
		eq.PageSize, err = q.integer("top", 100, 1, MaxTop)
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	page, next, err := a.backend.QueryEntities(r.Context(), eq)
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	w.Header().Set(continuationHeader, next)
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	var item bytes.Buffer
	enc := json.NewEncoder(&item)
	enc.SetEscapeHTML(false)
	_ = bw.WriteByte('[')
	for i, rec := range page {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		item.Reset()
		// Every field is valid JSON (rawJSON), so encoding cannot fail.
		_ = enc.Encode(entityStatusPayload(rec, eq.WithState))
		if _, err := bw.Write(bytes.TrimSuffix(item.Bytes(), []byte("\n"))); err != nil {
			return // the client left
		}
		page[i] = control.EntityRecord{} // let the states go as soon as they are written
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// CleanResult is the answer of POST entities/$clean.
type CleanResult struct {
	EmptyEntitiesRemoved  int `json:"emptyEntitiesRemoved"`
	OrphanedLocksReleased int `json:"orphanedLocksReleased"`
}

// cleanEntities handles POST entities/$clean, Reprise's route for what Durable Functions clients
// do with CleanEntityStorageAsync: removeEmptyEntities removes the entities without state, lock
// or backlog that have been idle for idleSeconds (default 30 minutes: a late duplicate must still
// be recognised); releaseOrphanedLocks releases the locks whose holder no longer runs. It goes
// through every page before it answers.
func (a *API) cleanEntities(w http.ResponseWriter, r *http.Request, q query) {
	var req control.CleanRequest
	var err error
	req.RemoveEmpty, err = q.boolean("removeEmptyEntities", false)
	if err == nil {
		req.ReleaseOrphanedLocks, err = q.boolean("releaseOrphanedLocks", false)
	}
	var idle time.Duration
	var hasIdle bool
	if err == nil {
		idle, hasIdle, err = q.seconds("idleSeconds")
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	if !req.RemoveEmpty && !req.ReleaseOrphanedLocks {
		badRequest(w, fmt.Errorf("nothing to clean: pass removeEmptyEntities=true, releaseOrphanedLocks=true or both"))
		return
	}
	switch {
	case hasIdle && idle == 0:
		req.IdleFor = -1 // at once
	case hasIdle:
		req.IdleFor = idle
	}
	var out CleanResult
	for {
		res, err := a.backend.CleanEntityStorage(r.Context(), req)
		if err != nil {
			a.fail(w, r, "", err)
			return
		}
		out.EmptyEntitiesRemoved += res.Removed
		out.OrphanedLocksReleased += res.Released
		if res.ContinuationToken == "" {
			break
		}
		req.ContinuationToken = res.ContinuationToken
	}
	WriteJSON(w, http.StatusOK, out)
}
