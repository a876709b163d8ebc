// Package dashboard serves Reprise's web dashboard: a static shell (HTML, CSS and a JavaScript
// module, embedded in the binary, no build step) under Path, and a small read-only JSON API under
// APIPath for what the Durable Functions management API lacks (filtered listings by orchestrator
// name, counts per status, an instance's history as a timeline and as a table, the durable
// entities with their state, lock, backlog and recent operations).
//
// The page changes instances through the management API itself (terminate, suspend, resume,
// raise event, restart, rewind, purge), so the dashboard and the official clients share one set of
// status codes and messages. This package knows nothing of keys: the host decides, through
// Options.Authorize, who may read the JSON API.
package dashboard

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"strings"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

// Paths served by the Handler.
const (
	Path    = "/dashboard/"
	APIPath = "/dashboard/api/"
)

//go:embed assets
var assets embed.FS

// staticFiles maps the shell's paths (after Path) to their embedded file and content type. The
// shell carries no data, so it is served without a key.
var staticFiles = map[string]struct{ file, contentType string }{
	"":          {"assets/index.html", "text/html; charset=utf-8"},
	"app.js":    {"assets/app.js", "text/javascript; charset=utf-8"},
	"style.css": {"assets/style.css", "text/css; charset=utf-8"},
	"icon.svg":  {"assets/icon.svg", "image/svg+xml"},
}

// Backend is what the dashboard reads. The root package implements it over the App's store and
// registry; errors are classified with ErrorKind as for the management API.
type Backend interface {
	// Hub returns the task hub's name.
	Hub() string
	// Orchestrators returns the names of the registered orchestrators, as registered.
	Orchestrators() []string
	// GetInstance returns the stored instance.
	GetInstance(ctx context.Context, id string) (store.Instance, error)
	// History returns the events of the instance's current execution.
	History(ctx context.Context, id string) ([]history.Event, error)
	// ListInstances returns a page of instances and the next page's token.
	ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error)
	// CountInstances counts the instances matching q's filters, by status.
	CountInstances(ctx context.Context, q store.Query) (map[store.Status]int, error)
	// Entities returns the names of the entities the host registered, as registered.
	Entities() []string
	// QueryEntities returns a page of entities and the next page's token
	// (control.Plane.QueryEntities).
	QueryEntities(ctx context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error)
	// EntityDetail returns an entity with its state and last operations
	// (control.Plane.EntityDetail); an error of kind KindNotFound when there is no such entity.
	EntityDetail(ctx context.Context, id string) (control.EntityRecord, error)
	// Unclaimed returns the work that waits for names the host has not registered and that no
	// host has taken (engine.Engine.Unclaimed).
	Unclaimed() []store.Unclaimed
	// ErrorKind classifies an error returned by the methods above.
	ErrorKind(err error) httpapi.ErrorKind
}

// Options configures the Handler.
type Options struct {
	// Authorize guards the JSON API; nil allows everyone. A false answer gives 401.
	Authorize func(*http.Request) bool
	// Anonymous is reported by /api/info, so the page knows it will never be asked for a key.
	Anonymous bool
	// KeyHelp says where the master key comes from and how to get it, for the 401 answer and the
	// page's key dialog, such as "print it with `reprise keys`".
	KeyHelp string
	// NoMasterKey says the host has no master key: the 401 answer says so, and the page tells the
	// user instead of asking for a key that does not exist.
	NoMasterKey bool
	// Logger receives unexpected backend errors (answered with 500); default discards.
	Logger *slog.Logger
	// Live, when set, returns the recent samples of throughput, failures and backlog for the
	// instances page's chart, and the seconds between them; nil means metrics are off.
	Live func() (samples []metrics.Sample, intervalSeconds float64)
}

type handler struct {
	b    Backend
	opts Options
	log  *slog.Logger
}

// New returns the dashboard's handler, to be mounted at Path. b must not be nil.
func New(b Backend, opts Options) http.Handler {
	if b == nil {
		panic("dashboard: Backend is nil")
	}
	h := &handler{b: b, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// SetSecurityHeaders sets the headers every dashboard response carries: no inline script or style,
// no framing, no sniffing, no referrer (URLs carry instance IDs).
func SetSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SetSecurityHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeMessage(w, http.StatusMethodNotAllowed, "the dashboard only answers GET; actions go through the management API")
		return
	}
	path := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(path, APIPath); ok {
		w.Header().Set("Cache-Control", "no-store")
		if h.opts.Authorize != nil && !h.opts.Authorize(r) {
			h.unauthorized(w)
			return
		}
		h.api(w, r, rest)
		return
	}
	name, ok := strings.CutPrefix(path, Path)
	f, known := staticFiles[name]
	if !ok || !known {
		writeMessage(w, http.StatusNotFound, "no such dashboard file: the dashboard is at "+Path)
		return
	}
	body, err := assets.ReadFile(f.file)
	if err != nil {
		// The files are embedded at build time; a missing one is a bug in this package.
		writeMessage(w, http.StatusInternalServerError, "dashboard asset missing: "+f.file)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// unauthorized answers 401 with what the page needs to ask for the key, or to say there is none.
func (h *handler) unauthorized(w http.ResponseWriter) {
	msg := "the dashboard's data requires the master key: pass it as the x-functions-key header"
	if h.opts.NoMasterKey {
		msg = "this host has no master key, so the dashboard's data cannot be shown"
	}
	if h.opts.KeyHelp != "" {
		msg += ". " + h.opts.KeyHelp
	}
	httpapi.WriteJSON(w, http.StatusUnauthorized, struct {
		Message   string `json:"Message"`
		MasterKey bool   `json:"masterKey"` // whether the host has one to ask for
		KeyHelp   string `json:"keyHelp,omitempty"`
	}{msg, !h.opts.NoMasterKey, h.opts.KeyHelp})
}
