package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// jsonContentType is the Content-Type of every JSON response, as the extension sends it.
const jsonContentType = "application/json; charset=utf-8"

// ExceptionType values: clients and scripts written against the extension look at them, so the
// .NET names are kept for the same situations.
const (
	argumentException         = "System.ArgumentException"
	invalidOperationException = "System.InvalidOperationException"
	alreadyExistsException    = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
	jsonReaderException       = "Newtonsoft.Json.JsonReaderException"
)

// errorBody is the shape of ASP.NET's HttpError, which the extension answers errors with. The
// Python client raises ExceptionMessage on a 400. StackTrace is left out on purpose.
type errorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage,omitempty"`
	ExceptionType    string `json:"ExceptionType,omitempty"`
}

// WriteJSON writes v as the body with the JSON Content-Type (the dashboard answers with it too).
// HTML escaping is off so that the '&' of generated URLs stays readable.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value written here is built from valid JSON; reaching this is a bug in this package.
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"Message":"Something went wrong while processing your request"}` + "\n")
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, code int, body errorBody) { WriteJSON(w, code, body) }

// badRequest answers 400 for an invalid argument, in the shape of the extension's
// ArgumentException answer.
func badRequest(w http.ResponseWriter, err error) {
	writeError(w, http.StatusBadRequest, errorBody{
		Message:          "One or more of the arguments submitted is incorrect",
		ExceptionMessage: err.Error(),
		ExceptionType:    argumentException,
	})
}

// writeAlreadyActive answers a start or same-ID restart of an instance that is still active. The
// extension answers 500 (an unhandled OrchestrationAlreadyExistsException); 409 tells the caller
// it is their request that conflicts, not the server that broke.
func writeAlreadyActive(w http.ResponseWriter, id string) {
	writeError(w, http.StatusConflict, errorBody{
		Message: "An orchestration instance with the ID '" + id + "' is already active: wait for it to finish " +
			"or terminate it, or start the orchestration with another instance ID.",
		ExceptionType: alreadyExistsException,
	})
}

// fail answers a Backend error by its kind. Handlers deal first with the kinds that need a
// route-specific answer (restart of an unknown instance, rewind, ...). The kinds a caller can act
// on are answered with a message of their own that says what to do, and without the Backend's
// error text, which would say it a second time.
func (a *API) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The caller went away; nobody reads this answer, and it is no server error worth logging.
		writeError(w, http.StatusServiceUnavailable, errorBody{Message: "The request was canceled."})
		return
	}
	switch a.backend.ErrorKind(err) {
	case KindNotFound:
		w.WriteHeader(http.StatusNotFound)
	case KindExists:
		writeAlreadyActive(w, id)
	case KindFinished:
		writeFinished(w, id)
	case KindActive:
		writeError(w, http.StatusConflict, errorBody{
			Message:       "The orchestration instance '" + id + "' is still active; terminate it first.",
			ExceptionType: invalidOperationException,
		})
	case KindNotFailed:
		writeNotFailed(w, id)
	case KindInvalidInput:
		badRequest(w, err)
	case KindUnavailable:
		writeError(w, http.StatusServiceUnavailable, errorBody{
			Message:          "The orchestration service is not available right now; try again shortly.",
			ExceptionMessage: err.Error(),
		})
	default:
		a.log.Error("management API request failed", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, errorBody{
			Message:          "Something went wrong while processing your request",
			ExceptionMessage: err.Error(),
		})
	}
}

// writeFinished answers 410 Gone: the instance has finished and takes no more events or commands.
func writeFinished(w http.ResponseWriter, id string) {
	writeError(w, http.StatusGone, errorBody{
		Message:       "The orchestration instance '" + id + "' has finished; it takes no more events or commands.",
		ExceptionType: invalidOperationException,
	})
}

// notFailedMessage is the answer to a rewind of an instance that has not failed.
func notFailedMessage(id string) string {
	return "The orchestration instance '" + id + "' has not failed; only failed instances can be rewound."
}

// writeNotFailed answers 412, which the JavaScript client expects from a rewind of an instance
// that has not failed. The body is a bare JSON string, as Durable Functions sends it: the client
// rejects with the body as its message, and an object would read "[object Object]".
func writeNotFailed(w http.ResponseWriter, id string) {
	WriteJSON(w, http.StatusPreconditionFailed, notFailedMessage(id))
}
