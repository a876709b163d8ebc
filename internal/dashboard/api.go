package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

// Limits of a listing page.
const (
	defaultTop = 50
	maxTop     = 500
)

// allStatuses are the runtime statuses in the order the page shows them.
var allStatuses = []store.Status{
	store.StatusPending, store.StatusRunning, store.StatusSuspended, store.StatusCompleted,
	store.StatusContinuedAsNew, store.StatusFailed, store.StatusTerminated, store.StatusCanceled,
}

// api answers the JSON API; rest is the escaped path after APIPath.
func (h *handler) api(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "info":
		h.info(w)
	case rest == "instances":
		h.list(w, r)
	case rest == "counts":
		h.counts(w, r)
	case rest == "entities":
		h.entities(w, r)
	case rest == "entity":
		h.entity(w, r)
	case rest == "live":
		h.live(w)
	case strings.HasPrefix(rest, "instances/"):
		id, err := url.PathUnescape(strings.TrimPrefix(rest, "instances/"))
		if err != nil || id == "" || strings.Contains(id, "/") {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("invalid instance ID in the path %q", r.URL.EscapedPath()))
			return
		}
		h.instance(w, r, id)
	default:
		writeMessage(w, http.StatusNotFound, "no such dashboard API route: "+APIPath+rest)
	}
}

// Info is the answer of GET /dashboard/api/info.
type Info struct {
	Hub           string   `json:"hub"`
	Orchestrators []string `json:"orchestrators"`
	// Entities are the names of the entities this host registered, for the entity name filter's
	// suggestions (entities of workers connected over gRPC are listed too, but not named here).
	Entities  []string `json:"entities"`
	Statuses  []string `json:"statuses"`
	Anonymous bool     `json:"anonymous"`
}

func (h *handler) info(w http.ResponseWriter) {
	names := sortedNames(h.b.Orchestrators())
	statuses := make([]string, len(allStatuses))
	for i, s := range allStatuses {
		statuses[i] = s.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, Info{
		Hub:           h.b.Hub(),
		Orchestrators: names,
		Entities:      sortedNames(h.b.Entities()),
		Statuses:      statuses,
		Anonymous:     h.opts.Anonymous,
	})
}

// sortedNames returns names sorted case-insensitively, [] for none.
func sortedNames(names []string) []string {
	names = slices.Clone(names)
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	if names == nil {
		names = []string{}
	}
	return names
}

// Summary is one row of a listing.
type Summary struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	ParentID  string `json:"parentId,omitempty"`
	// Version is the orchestration version the instance was started with; "" (left out) for none.
	Version string `json:"version,omitempty"`
	// CustomStatusPreview is the custom status as compact JSON cut to 200 bytes, for the list's
	// column; "" when there is none.
	CustomStatusPreview string `json:"customStatusPreview,omitempty"`
}

func summary(inst store.Instance) Summary {
	return Summary{
		ID: inst.ID, Name: inst.Name, Status: inst.Status.String(),
		CreatedAt: timeText(inst.CreatedAt), UpdatedAt: timeText(inst.UpdatedAt), ParentID: inst.ParentID,
		Version: inst.Version, CustomStatusPreview: preview(inst.CustomStatus),
	}
}

// Page is the answer of GET /dashboard/api/instances.
type Page struct {
	Instances []Summary `json:"instances"`
	// Next is the token of the next page; "" on the last one.
	Next string `json:"next"`
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), true)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	// The custom status column needs the payloads: the store reads them with input and output, as
	// for a management API listing of the same page.
	q.WithoutPayloads = false
	page, next, err := h.b.ListInstances(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := Page{Instances: make([]Summary, len(page)), Next: next}
	for i, inst := range page {
		out.Instances[i] = summary(inst)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// Counts is the answer of GET /dashboard/api/counts: every status, with 0 for those without
// instances, and the total.
type Counts struct {
	Counts map[string]int `json:"counts"`
	Total  int            `json:"total"`
	// Unclaimed is the work that waits for an orchestrator or activity this host has not
	// registered and that no host has taken (whatever the filters); empty when there is none.
	Unclaimed []Unclaimed `json:"unclaimed"`
}

// Unclaimed is the work waiting for one name.
type Unclaimed struct {
	Kind  string `json:"kind"` // "orchestration" or "activity"
	Name  string `json:"name"`
	Count int    `json:"count"` // instances or activity tasks
}

func (h *handler) counts(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), false)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	q.Statuses = nil // the counts are what a status filter chooses from
	byStatus, err := h.b.CountInstances(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := Counts{Counts: map[string]int{}, Unclaimed: []Unclaimed{}}
	for _, s := range allStatuses {
		out.Counts[s.String()] = byStatus[s]
		out.Total += byStatus[s]
	}
	for _, u := range h.b.Unclaimed() {
		out.Unclaimed = append(out.Unclaimed, Unclaimed{Kind: u.Kind.String(), Name: u.Name, Count: u.Count})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// queryParams are the parameters the listing understands; any other is refused, so that a typo
// in a shared URL does not silently show everything.
var queryParams = []string{"status", "name", "version", "createdFrom", "createdTo", "prefix", "top", "token", "order"}

// ignoredParams may come with any request: the key, which the host has already checked.
var ignoredParams = []string{"code"}

// parseQuery reads the filters of a listing (and, with paging, top and token).
func parseQuery(v url.Values, paging bool) (store.Query, error) {
	q := store.Query{WithoutPayloads: true, PageSize: defaultTop}
	for k := range v {
		if !slices.Contains(queryParams, k) && !slices.Contains(ignoredParams, k) {
			return q, fmt.Errorf("unknown query parameter %q: the dashboard API takes %s", k, strings.Join(queryParams, ", "))
		}
	}
	for _, list := range v["status"] {
		for s := range strings.SplitSeq(list, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			st, err := store.ParseStatus(s)
			if err != nil {
				return q, fmt.Errorf("invalid status filter: %w", err)
			}
			if !slices.Contains(q.Statuses, st) {
				q.Statuses = append(q.Statuses, st)
			}
		}
	}
	q.Name = strings.TrimSpace(v.Get("name"))
	q.IDPrefix = v.Get("prefix")
	// Versions are matched whole and exactly, so they are not trimmed; version= (empty) selects
	// the instances without a version, and the parameter may be repeated.
	if vs, ok := v["version"]; ok {
		if len(vs) > store.MaxQueryVersions {
			return q, fmt.Errorf("invalid version filter: %d versions, at most %d may be given", len(vs), store.MaxQueryVersions)
		}
		for _, s := range vs {
			if err := store.CheckVersion(s); err != nil {
				return q, fmt.Errorf("invalid version filter: %s", strings.TrimPrefix(err.Error(), store.ErrInvalidArgument.Error()+": "))
			}
		}
		q.Versions = slices.Clone(vs)
	}
	var err error
	if q.CreatedFrom, err = parseTime(v, "createdFrom"); err != nil {
		return q, err
	}
	if q.CreatedTo, err = parseTime(v, "createdTo"); err != nil {
		return q, err
	}
	if !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && q.CreatedTo.Before(q.CreatedFrom) {
		return q, fmt.Errorf("createdTo (%s) is before createdFrom (%s)", timeText(q.CreatedTo), timeText(q.CreatedFrom))
	}
	if !paging {
		return q, nil
	}
	if s := v.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTop {
			return q, fmt.Errorf("invalid top %q: want a page size from 1 to %d", s, maxTop)
		}
		q.PageSize = n
	}
	q.ContinuationToken = v.Get("token")
	switch o := v.Get("order"); o {
	case "", "newest":
		q.NewestFirst = true
	case "oldest":
	default:
		return q, fmt.Errorf("invalid order %q: want newest (the default) or oldest", o)
	}
	return q, nil
}

// parseTime reads an RFC 3339 time; the zone may be left out (UTC), as a datetime-local input
// gives it.
func parseTime(v url.Values, name string) (time.Time, error) {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			// A time given is a bound: 0001-01-01 (Go's zero time) must not read as "none".
			if t.Before(store.MinTime()) || t.After(store.MaxTime()) {
				return time.Time{}, fmt.Errorf("invalid %s %q: want a time from %s to %s", name, s,
					store.MinTime().Format(time.DateOnly), store.MaxTime().Format(time.DateOnly))
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid %s %q: want an RFC 3339 time such as 2024-01-02T15:04:05Z", name, s)
}

// Detail is the answer of GET /dashboard/api/instances/{id}.
type Detail struct {
	Summary                       // id, name, status, createdAt, updatedAt, parentId, as in a listing
	ExecutionID  string           `json:"executionId,omitempty"`
	Input        json.RawMessage  `json:"input"`
	Output       json.RawMessage  `json:"output"`
	CustomStatus json.RawMessage  `json:"customStatus"`
	Failure      *history.Failure `json:"failure,omitempty"` // as stored: type, message, stack, inner
	Timeline     Timeline         `json:"timeline"`
	// History is the history as the management API shows it (showHistory=true with inputs and
	// outputs): the raw view behind the timeline.
	History []httpapi.HistoryEvent `json:"history"`
	// Events is the history event by event, for the page's history table.
	Events []HistoryRow `json:"events"`
}

func (h *handler) instance(w http.ResponseWriter, r *http.Request, id string) {
	inst, err := h.b.GetInstance(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	events, err := h.b.History(r.Context(), id)
	if err != nil && h.b.ErrorKind(err) != httpapi.KindNotFound {
		h.fail(w, r, err)
		return
	}
	d := Detail{
		Summary: summary(inst), ExecutionID: inst.ExecutionID,
		Input: jsonOrString(inst.Input), Output: jsonOrString(inst.Output), CustomStatus: jsonOrString(inst.CustomStatus),
		Failure:  history.DecodeFailure(inst.Failure),
		Timeline: BuildTimeline(inst, events),
		History:  httpapi.HistoryEvents(events, httpapi.StatusOptions{ShowInput: true, ShowHistoryOutput: true}),
		Events:   HistoryRows(events),
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
}

// fail answers a backend error by its kind.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		writeMessage(w, http.StatusServiceUnavailable, "the request was canceled")
		return
	}
	switch h.b.ErrorKind(err) {
	case httpapi.KindNotFound:
		writeMessage(w, http.StatusNotFound, "no instance with this ID in task hub "+strconv.Quote(h.b.Hub()))
	case httpapi.KindInvalidInput:
		writeMessage(w, http.StatusBadRequest, err.Error())
	case httpapi.KindUnavailable:
		writeMessage(w, http.StatusServiceUnavailable, "the app is not running: "+err.Error())
	default:
		h.log.Error("dashboard request failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		writeMessage(w, http.StatusInternalServerError, "the dashboard could not read the store: "+err.Error())
	}
}

// timeText formats a time for the page: RFC 3339 in UTC with the fraction it has; "" for zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jsonOrString returns stored JSON for embedding: nil stays nil (null), and bytes that are not
// valid JSON become a JSON string, so that one bad row cannot break the page.
func jsonOrString(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if !json.Valid(b) {
		s, _ := json.Marshal(string(b))
		return s
	}
	return json.RawMessage(b)
}

// message is the error body, in the shape of the host's and the management API's errors.
type message struct {
	Message string `json:"Message"`
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	httpapi.WriteJSON(w, code, message{msg})
}

// Live is the answer of GET /dashboard/api/live: the recent samples of the host's metrics for the
// instances page's chart (Off when the host records no metrics).
type Live struct {
	Off      bool             `json:"off"`
	Interval float64          `json:"interval"` // seconds between samples
	Samples  []metrics.Sample `json:"samples"`
}

func (h *handler) live(w http.ResponseWriter) {
	out := Live{Off: true, Samples: []metrics.Sample{}}
	if h.opts.Live != nil {
		if samples, interval := h.opts.Live(); samples != nil {
			out = Live{Interval: interval, Samples: samples}
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
