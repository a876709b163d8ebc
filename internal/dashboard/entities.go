package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/store"
)

// stateLimit bounds the state an entity's page gets: compact JSON cut to this many bytes
// (StateCut), so that one huge entity cannot stall the browser. The CLI and the management API
// have all of it.
const stateLimit = 64 << 10

// maxTokenBytes bounds a continuation token: the store's are far shorter, and a longer one is not
// worth handing to it.
const maxTokenBytes = 4 << 10

// EntitySummary is one row of the entities listing.
type EntitySummary struct {
	ID           string `json:"id"` // the instance ID, @name@key
	Name         string `json:"name"`
	Key          string `json:"key"`
	LastModified string `json:"lastModified"`
	// LockedBy is the orchestration that holds the entity's lock; "" when it is free.
	LockedBy string `json:"lockedBy,omitempty"`
	Backlog  int    `json:"backlog"` // messages waiting behind the lock
	// Exists is whether the entity has state; one without (deleted, or only locked or queued) is
	// transient and listed only when asked for.
	Exists bool `json:"exists"`
}

func entitySummary(r control.EntityRecord) EntitySummary {
	return EntitySummary{ID: r.InstanceID, Name: r.Name, Key: r.Key, LastModified: timeText(r.LastModified),
		LockedBy: r.LockedBy, Backlog: r.Backlog, Exists: r.Exists}
}

// EntityPage is the answer of GET /dashboard/api/entities.
type EntityPage struct {
	Entities []EntitySummary `json:"entities"`
	// Next is the token of the next page; "" on the last one.
	Next string `json:"next"`
}

// EntityOp is one of an entity's recent operations.
type EntityOp struct {
	Time      string `json:"time"`
	Operation string `json:"operation"`
	RequestID string `json:"requestId"`
	// Caller is the orchestration that called it; "" for a signal.
	Caller string `json:"caller,omitempty"`
	Failed bool   `json:"failed"`
}

// EntityDetail is the answer of GET /dashboard/api/entity?name=…&key=….
type EntityDetail struct {
	EntitySummary
	// State is the state as compact JSON (as stored when it is not JSON), cut to stateLimit bytes
	// (StateCut); "" when the entity has none. StateBytes is its whole size.
	State      string `json:"state"`
	StateCut   bool   `json:"stateCut"`
	StateBytes int    `json:"stateBytes"`
	// Ops are the entity's last operations, newest first.
	Ops []EntityOp `json:"ops"`
}

// entityParams are the parameters the entities listing understands; any other is refused.
var entityParams = []string{"name", "key", "modifiedFrom", "modifiedTo", "transient", "top", "token"}

// parseEntityQuery reads the filters and paging of an entities listing.
func parseEntityQuery(v url.Values) (control.EntityQuery, error) {
	q := control.EntityQuery{PageSize: defaultTop}
	for k, vals := range v {
		if !slices.Contains(entityParams, k) && !slices.Contains(ignoredParams, k) {
			return q, fmt.Errorf("unknown query parameter %q: the entities listing takes %s", k, strings.Join(entityParams, ", "))
		}
		if len(vals) > 1 && k != "code" {
			return q, fmt.Errorf("query parameter %q is given %d times: give it once", k, len(vals))
		}
	}
	name, err := entityName(v.Get("name"))
	if err != nil {
		return q, err
	}
	key := v.Get("key")
	if err := checkParam("key prefix", key, store.MaxKeyBytes); err != nil {
		return q, err
	}
	switch {
	case key != "" && name == "":
		return q, fmt.Errorf("a key prefix needs an entity name: keys are matched within one entity name")
	case key != "":
		// The instance ID is @lower(name)@key: a key prefix is a prefix of the ID.
		q.IDPrefix = store.EntityInstanceID(strings.ToLower(name), key)
	default:
		q.Name = name
	}
	if q.LastModifiedFrom, err = parseTime(v, "modifiedFrom"); err != nil {
		return q, err
	}
	if q.LastModifiedTo, err = parseTime(v, "modifiedTo"); err != nil {
		return q, err
	}
	if !q.LastModifiedFrom.IsZero() && !q.LastModifiedTo.IsZero() && q.LastModifiedTo.Before(q.LastModifiedFrom) {
		return q, fmt.Errorf("modifiedTo (%s) is before modifiedFrom (%s)", timeText(q.LastModifiedTo), timeText(q.LastModifiedFrom))
	}
	switch t := v.Get("transient"); t {
	case "", "false":
	case "true":
		q.IncludeTransient = true
	default:
		return q, fmt.Errorf("invalid transient %q: want true (list entities without state too) or false (the default)", cut(t, 40))
	}
	if s := v.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTop {
			return q, fmt.Errorf("invalid top %q: want a page size from 1 to %d", cut(s, 40), maxTop)
		}
		q.PageSize = n
	}
	q.ContinuationToken = v.Get("token")
	if len(q.ContinuationToken) > maxTokenBytes || !utf8.ValidString(q.ContinuationToken) {
		return q, fmt.Errorf("invalid continuation token: pass back the next token of a previous page unchanged")
	}
	return q, nil
}

// entityName checks an entity name given as a filter or in an entity's address.
func entityName(name string) (string, error) {
	if err := checkParam("entity name", name, control.MaxNameBytes); err != nil {
		return "", err
	}
	if strings.Contains(name, "@") {
		return "", fmt.Errorf("invalid entity name %q: entity names cannot contain '@'", cut(name, 80))
	}
	return name, nil
}

// checkParam checks a text parameter: UTF-8 without NUL, at most maxBytes long.
func checkParam(what, s string, maxBytes int) error {
	switch {
	case len(s) > maxBytes:
		return fmt.Errorf("the %s is %d bytes long, the limit is %d", what, len(s), maxBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("the %s is not valid UTF-8", what)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("the %s contains a NUL character", what)
	}
	return nil
}

func (h *handler) entities(w http.ResponseWriter, r *http.Request) {
	q, err := parseEntityQuery(r.URL.Query())
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	page, next, err := h.b.QueryEntities(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := EntityPage{Entities: make([]EntitySummary, len(page)), Next: next}
	for i, e := range page {
		out.Entities[i] = entitySummary(e)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// entity answers GET /dashboard/api/entity?name=…&key=…: the name and key are parameters, not
// path segments, so that any key ("..", "a//b", "x/y") reaches the handler as it is.
func (h *handler) entity(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for k, vals := range v {
		if k != "name" && k != "key" && !slices.Contains(ignoredParams, k) {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q: an entity is given by name and key", k))
			return
		}
		if len(vals) > 1 && k != "code" {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("query parameter %q is given %d times: give it once", k, len(vals)))
			return
		}
	}
	if !v.Has("name") || !v.Has("key") {
		writeMessage(w, http.StatusBadRequest, "an entity is given by its name and key: /dashboard/api/entity?name=counter&key=k1")
		return
	}
	name, err := entityName(v.Get("name"))
	if err == nil {
		err = checkParam("entity key", v.Get("key"), store.MaxKeyBytes)
	}
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	id, err := control.EntityInstanceID(name, v.Get("key"))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := h.b.EntityDetail(r.Context(), id)
	if err != nil {
		if h.b.ErrorKind(err) == httpapi.KindNotFound {
			writeMessage(w, http.StatusNotFound, fmt.Sprintf("no entity %q in task hub %q: it was never signalled, or it was removed", id, h.b.Hub()))
			return
		}
		h.fail(w, r, err)
		return
	}
	d := EntityDetail{EntitySummary: entitySummary(rec), Ops: make([]EntityOp, 0, len(rec.Ops))}
	if rec.State != nil {
		var buf bytes.Buffer
		if json.Compact(&buf, rec.State) != nil {
			buf.Reset()
			buf.Write(rec.State) // not JSON: shown as stored
		}
		full := buf.String()
		d.StateBytes = len(full)
		d.State = cut(full, stateLimit)
		d.StateCut = d.State != full
	}
	for i := len(rec.Ops) - 1; i >= 0; i-- {
		op := rec.Ops[i]
		d.Ops = append(d.Ops, EntityOp{Time: timeText(op.Time), Operation: op.Name, RequestID: op.RequestID,
			Caller: op.Caller, Failed: op.Failed})
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
}
