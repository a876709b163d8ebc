package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/store"
)

// start handles POST orchestrators/{functionName}[/{instanceId}] (route row 1).
func (a *API) start(w http.ResponseWriter, r *http.Request, q query, name, id string) {
	wait, err := waitParams(q)
	if err == nil {
		err = q.single("version")
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	input, ok := a.readJSON(w, r)
	if !ok {
		return
	}
	if !a.backend.HasOrchestrator(name) {
		writeError(w, http.StatusBadRequest, errorBody{
			Message:          "One or more of the arguments submitted is incorrect",
			ExceptionMessage: "The function '" + name + "' doesn't exist or is not an orchestrator function registered with this app.",
			ExceptionType:    argumentException,
		})
		return
	}
	// version is the npm client's startNew(name, {version}) (3.5+), checked by checkRequestText.
	started, err := a.backend.StartNew(r.Context(), name, id, q.first("version"), input)
	if err != nil {
		a.fail(w, r, id, err)
		return
	}
	a.checkStatusOrWait(w, r, started, wait)
}

// waitSpec is the wait mode of a start or restart: on only when both timeout and pollingInterval
// are given. The interval is only checked, as the Backend waits without polling.
type waitSpec struct {
	on           bool
	timeout      time.Duration
	iseOnFailure bool
}

// waitParams reads the wait parameters. They are checked before anything is started, so that a
// bad interval does not leave a started instance behind a 400.
func waitParams(q query) (waitSpec, error) {
	timeout, hasTimeout, err := q.seconds("timeout")
	if err != nil {
		return waitSpec{}, err
	}
	interval, hasInterval, err := q.seconds("pollingInterval")
	if err != nil {
		return waitSpec{}, err
	}
	ise, err := q.boolean("returnInternalServerErrorOnFailure", false)
	if err != nil {
		return waitSpec{}, err
	}
	if hasTimeout && hasInterval {
		if err := checkWait(timeout, interval); err != nil {
			return waitSpec{}, err
		}
	}
	return waitSpec{on: hasTimeout && hasInterval, timeout: timeout, iseOnFailure: ise}, nil
}

func checkWait(timeout, interval time.Duration) error {
	if timeout < 0 || interval < 0 {
		return fmt.Errorf("timeout (%v) and polling interval (%v) must not be negative", timeout, interval)
	}
	if interval > timeout {
		return fmt.Errorf("the polling interval (%v) must not be greater than the timeout (%v)", interval, timeout)
	}
	return nil
}

func (a *API) checkStatusOrWait(w http.ResponseWriter, r *http.Request, id string, wait waitSpec) {
	if wait.on {
		a.waitOrCheckStatus(w, r, id, wait.timeout, wait.iseOnFailure)
		return
	}
	a.WriteCheckStatus(w, r, id)
}

// WriteWaitOrCheckStatus waits up to timeout for instance id to finish (docs/compat/durable-functions-http.md §4):
// Completed gives 200 with the output as the body; Failed, Terminated and Canceled give 200 with
// the status JSON; an instance still running at the timeout gives the 202 check-status response.
// interval is only checked (it may not exceed timeout: 400): the Backend waits without polling.
func (a *API) WriteWaitOrCheckStatus(w http.ResponseWriter, r *http.Request, id string, timeout, interval time.Duration) {
	if err := checkWait(timeout, interval); err != nil {
		badRequest(w, err)
		return
	}
	a.waitOrCheckStatus(w, r, id, timeout, false)
}

func (a *API) waitOrCheckStatus(w http.ResponseWriter, r *http.Request, id string, timeout time.Duration, iseOnFailure bool) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	inst, err := a.backend.WaitForCompletion(ctx, id)
	if err != nil {
		timedOut := ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)
		if timedOut && r.Context().Err() == nil {
			a.WriteCheckStatus(w, r, id)
			return
		}
		a.fail(w, r, id, err)
		return
	}
	switch inst.Status {
	case store.StatusCompleted:
		out := rawJSON(inst.Output)
		if out == nil {
			out = json.RawMessage("null")
		}
		w.Header().Set("Content-Type", jsonContentType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	case store.StatusFailed, store.StatusTerminated, store.StatusCanceled:
		a.writeStatus(w, r, inst, nil, StatusOptions{ShowInput: true}, iseOnFailure)
	default:
		a.WriteCheckStatus(w, r, id)
	}
}

// status handles GET instances/{id} (route row 2).
func (a *API) status(w http.ResponseWriter, r *http.Request, q query, id string) {
	var opts StatusOptions
	showHistory, err := q.boolean("showHistory", false)
	if err == nil {
		opts.ShowHistoryOutput, err = q.boolean("showHistoryOutput", false)
	}
	if err == nil {
		opts.ShowInput, err = q.boolean("showInput", true)
	}
	var iseOnFailure bool
	if err == nil {
		iseOnFailure, err = q.boolean("returnInternalServerErrorOnFailure", false)
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	inst, err := a.backend.GetInstance(r.Context(), id)
	if err != nil {
		a.fail(w, r, id, err)
		return
	}
	var events []history.Event
	if showHistory && inst.Status != store.StatusPending {
		if events, err = a.backend.History(r.Context(), id); err != nil {
			a.fail(w, r, id, err)
			return
		}
		if events == nil {
			events = []history.Event{}
		}
	}
	a.writeStatus(w, r, inst, events, opts, iseOnFailure)
}

// exportHistory handles GET instances/{id}/history, Reprise's own route: the stored history of
// the instance's current execution with every field (history.Export), the document
// Client.ExportHistory returns and reprise.ReplayHistory takes. showHistory gives a view of it
// for people, in the extension's shape, which drops what replay needs (sequence numbers, the
// bookkeeping events). An instance that has not started yet has an empty history: [].
func (a *API) exportHistory(w http.ResponseWriter, r *http.Request, id string) {
	if _, err := a.backend.GetInstance(r.Context(), id); err != nil {
		a.fail(w, r, id, err)
		return
	}
	events, err := a.backend.History(r.Context(), id)
	if err != nil {
		a.fail(w, r, id, err)
		return
	}
	data, err := history.Export(events)
	if err != nil {
		a.fail(w, r, id, err)
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(data, '\n'))
}

// writeStatus writes the status JSON of inst with the code the extension gives its runtime status.
func (a *API) writeStatus(w http.ResponseWriter, r *http.Request, inst store.Instance, events []history.Event, opts StatusOptions, iseOnFailure bool) {
	code := http.StatusOK
	switch inst.Status {
	case store.StatusRunning, store.StatusPending, store.StatusContinuedAsNew, store.StatusSuspended:
		code = http.StatusAccepted
		w.Header().Set("Location", requestURL(r))
		w.Header().Set("Retry-After", "5")
	case store.StatusCompleted, store.StatusCanceled, store.StatusTerminated:
	case store.StatusFailed:
		if iseOnFailure {
			code = http.StatusInternalServerError
		}
	default:
		code = http.StatusInternalServerError
	}
	WriteJSON(w, code, StatusPayload(inst, events, opts))
}

// continuationHeader carries list paging in both directions.
const continuationHeader = "X-Ms-Continuation-Token"

// list handles GET instances (route row 3).
func (a *API) list(w http.ResponseWriter, r *http.Request, q query) {
	sq := store.Query{
		IDPrefix:          q.first("instanceIdPrefix"),
		ContinuationToken: r.Header.Get(continuationHeader),
	}
	var err error
	showInput := true
	sq.CreatedFrom, _, err = q.time("createdTimeFrom")
	if err == nil {
		sq.CreatedTo, _, err = q.time("createdTimeTo")
	}
	if err == nil {
		sq.Statuses, err = q.statuses("runtimeStatus")
	}
	if err == nil {
		showInput, err = q.boolean("showInput", true)
	}
	if err == nil {
		sq.PageSize, err = q.integer("top", 100, 1, MaxTop)
	}
	if err == nil {
		sq.NewestFirst, err = q.newestFirst("order")
	}
	if err == nil {
		sq.Versions, err = q.versions("version")
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	// A page also ends once it holds maxPage bytes, so that large payloads cannot make one
	// response (and the memory behind it) unbounded; clients follow the token for the rest.
	sq.MaxBytes = a.maxPage
	// showInput=false hides only the input; WithoutPayloads would drop outputs too.
	page, next, err := a.backend.ListInstances(r.Context(), sq)
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	// Always present, empty on the last page: clients loop while it is truthy, and a literal
	// "null" token has made clients loop forever (docs/compat/durable-functions-http.md §10).
	w.Header().Set(continuationHeader, next)
	writeList(w, page, StatusOptions{ShowInput: showInput})
}

// writeList streams a page as a JSON array, one instance at a time, instead of building the
// whole body first: the page is already in memory once, it need not be twice more.
func writeList(w http.ResponseWriter, page []store.Instance, opts StatusOptions) {
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	var item bytes.Buffer
	enc := json.NewEncoder(&item)
	enc.SetEscapeHTML(false) // as WriteJSON
	_ = bw.WriteByte('[')
	for i, inst := range page {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		item.Reset()
		// Every field is built from valid JSON (rawJSON), so encoding cannot fail.
		_ = enc.Encode(StatusPayload(inst, nil, opts))
		if _, err := bw.Write(bytes.TrimSuffix(item.Bytes(), []byte("\n"))); err != nil {
			return // the client left
		}
		page[i] = store.Instance{} // let the payloads go as soon as they are written
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// purgeResult is the body of a successful purge.
type purgeResult struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// purgeOne handles DELETE instances/{id} (route row 4). Unlike the extension, which purges
// whatever it is asked to, an active instance is refused with 409: purging it would pull the
// rows from under the running orchestration.
func (a *API) purgeOne(w http.ResponseWriter, r *http.Request, id string) {
	if err := a.backend.PurgeInstance(r.Context(), id); err != nil {
		a.fail(w, r, id, err)
		return
	}
	WriteJSON(w, http.StatusOK, purgeResult{InstancesDeleted: 1})
}

// purgeMany handles DELETE instances (route row 5).
func (a *API) purgeMany(w http.ResponseWriter, r *http.Request, q query) {
	from, ok, err := q.time("createdTimeFrom")
	if err != nil {
		badRequest(w, err)
		return
	}
	if !ok {
		// The extension answers this one case with a bare JSON string.
		WriteJSON(w, http.StatusBadRequest, "Please provide value for 'createdTimeFrom' parameter.")
		return
	}
	to, ok, err := q.time("createdTimeTo")
	if err != nil {
		badRequest(w, err)
		return
	}
	if !ok {
		to = time.Now().UTC()
	}
	statuses, err := q.statuses("runtimeStatus")
	if err != nil {
		badRequest(w, err)
		return
	}
	for _, s := range statuses {
		if !s.Terminal() {
			badRequest(w, &paramError{"runtimeStatus", s.String(),
				"only finished instances (Completed, Failed, Terminated, Canceled) can be purged"})
			return
		}
	}
	n, err := a.backend.PurgeInstances(r.Context(), store.PurgeFilter{CreatedFrom: from, CreatedTo: to, Statuses: statuses})
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	if n == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	WriteJSON(w, http.StatusOK, purgeResult{InstancesDeleted: n})
}

// raiseEvent handles POST instances/{id}/raiseEvent/{name} (route row 6).
func (a *API) raiseEvent(w http.ResponseWriter, r *http.Request, id, name string) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		writeError(w, http.StatusBadRequest, errorBody{Message: "Only application/json request content is supported"})
		return
	}
	data, ok := a.readJSON(w, r)
	if !ok {
		return
	}
	if err := a.backend.RaiseEvent(r.Context(), id, name, data); err != nil {
		a.fail(w, r, id, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// command handles terminate, suspend and resume (route rows 7-9).
func (a *API) command(w http.ResponseWriter, r *http.Request, id, reason string, do func(context.Context, string, string) error) {
	if err := do(r.Context(), id, reason); err != nil {
		a.fail(w, r, id, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// rewind handles POST instances/{id}/rewind (route row 10): 410 for an instance that finished
// without failing, 412 for one still running. The Backend may report both as KindNotFailed, so
// the status decides which.
func (a *API) rewind(w http.ResponseWriter, r *http.Request, id, reason string) {
	err := a.backend.Rewind(r.Context(), id, reason)
	if err == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if a.backend.ErrorKind(err) == KindNotFailed {
		inst, gerr := a.backend.GetInstance(r.Context(), id)
		if gerr != nil {
			a.fail(w, r, id, gerr)
			return
		}
		if inst.Status.Terminal() {
			// 410, as the extension answers for Completed and Terminated, with the reason
			// that matters for a rewind.
			writeError(w, http.StatusGone, errorBody{Message: notFailedMessage(id), ExceptionType: invalidOperationException})
			return
		}
	}
	a.fail(w, r, id, err)
}

// restart handles POST instances/{id}/restart (route row 11).
func (a *API) restart(w http.ResponseWriter, r *http.Request, q query, id string) {
	newID, err := q.boolean("restartWithNewInstanceId", true)
	if err != nil {
		badRequest(w, err)
		return
	}
	wait, err := waitParams(q)
	if err != nil {
		badRequest(w, err)
		return
	}
	started, err := a.backend.Restart(r.Context(), id, newID)
	if err != nil {
		if a.backend.ErrorKind(err) == KindNotFound {
			// The extension's answer: a 400 with this message, not a 404.
			writeError(w, http.StatusBadRequest, errorBody{Message: "InstanceId does not match a valid orchestration instance."})
			return
		}
		a.fail(w, r, id, err)
		return
	}
	a.checkStatusOrWait(w, r, started, wait)
}

// readJSON reads a request body that must be JSON, within the size limit. An empty body is null.
// It answers 413 or 400 itself and then reports false.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	body, ok := a.readBody(w, r)
	if !ok {
		return nil, false
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return json.RawMessage("null"), true
	}
	// encoding/json does not check that strings are UTF-8, and what is stored here is echoed
	// as JSON to every client.
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, errorBody{
			Message:          "Invalid JSON content",
			ExceptionMessage: notUTF8Message,
			ExceptionType:    jsonReaderException,
		})
		return nil, false
	}
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		writeError(w, http.StatusBadRequest, errorBody{
			Message:          "Invalid JSON content",
			ExceptionMessage: err.Error(),
			ExceptionType:    jsonReaderException,
		})
		return nil, false
	}
	return body, true
}

// notUTF8Message is the answer to a body that is not UTF-8.
const notUTF8Message = "The request body is not valid UTF-8; JSON text must be UTF-8."

// readBody reads a request body within the size limit; nil when there is none. It answers 413,
// 408 or 400 itself and then reports false.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil { // requests built by hand (not by net/http) may have none
		return nil, true
	}
	tooLarge := func() {
		writeError(w, http.StatusRequestEntityTooLarge, errorBody{
			Message: "The request body is larger than the limit of " + strconv.FormatInt(a.maxBody, 10) + " bytes.",
		})
	}
	if r.ContentLength > a.maxBody {
		// Before the first read, so a client that sent Expect: 100-continue uploads nothing.
		tooLarge()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge()
			return nil, false
		}
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			writeError(w, http.StatusRequestTimeout, errorBody{Message: "The request body did not arrive in time; send it without pauses."})
			return nil, false
		}
		writeError(w, http.StatusBadRequest, errorBody{Message: "The request body could not be read.", ExceptionMessage: err.Error()})
		return nil, false
	}
	return body, true
}
