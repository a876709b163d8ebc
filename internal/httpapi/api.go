package httpapi

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/reprise-dev/reprise/internal/localguard"
)

// unauthorizedMessage is the body of a 401 under WebhookBase.
const unauthorizedMessage = "The management API requires the system key or the master key: pass it as the code query parameter or the x-functions-key header."

// Base paths of the management API. The webhook base is what the generated URLs point to; the
// RPC base is where the JavaScript and Python clients send everything once they have rpcBaseUrl.
const (
	WebhookBase = "/runtime/webhooks/durabletask"
	RPCBase     = "/durabletask"
)

// DefaultMaxPageBytes is the default size bound of a page of GET instances: the stored bytes of
// its instances (IDs, names, payloads), which the JSON of the page exceeds only by its keys.
const DefaultMaxPageBytes = 4 << 20

// MaxTop is the largest page size (the top parameter) GET instances accepts.
const MaxTop = 1000

// Options configures an API.
type Options struct {
	Backend Backend
	// Authorize guards requests under /runtime/webhooks/durabletask; nil allows everyone. A false
	// answer gives 401 with a JSON message saying how to pass the key.
	Authorize func(*http.Request) bool
	// AuthorizeAdmin also guards, under WebhookBase, the routes of Reprise's own that change
	// more than one instance at a time (POST entities/$clean); nil leaves them to Authorize. A
	// false answer gives 401. The host passes the master-key check.
	AuthorizeAdmin func(*http.Request) bool
	// SystemKey, when not empty, is appended as code=<key> to every generated URL (as the
	// extension does with requiredQueryStringParameters).
	SystemKey string
	// ConnectionName is the connection= value of generated URLs; default "Storage".
	ConnectionName string
	// MaxBodyBytes bounds request bodies; default 4 MiB (4<<20). Past it: 413 with a JSON message.
	MaxBodyBytes int64
	// MaxPageBytes bounds a page of GET instances by size (store.Query.MaxBytes); default
	// DefaultMaxPageBytes.
	MaxPageBytes int
	// Logger receives unexpected backend errors (the ones answered with 500); default discards.
	Logger *slog.Logger
	// Guard keeps the keyless RPC base from web pages and remote callers (see package
	// localguard); nil accepts loopback host names only.
	Guard *localguard.Guard
}

// API is the http.Handler of the management API. It is safe for concurrent use.
type API struct {
	backend        Backend
	authorize      func(*http.Request) bool
	authorizeAdmin func(*http.Request) bool
	systemKey      string
	connection     string
	maxBody        int64
	maxPage        int
	log            *slog.Logger
	guard          *localguard.Guard
}

// New returns an API over opts.Backend, which must not be nil.
func New(opts Options) *API {
	if opts.Backend == nil {
		panic("httpapi: Options.Backend is nil")
	}
	a := &API{
		backend:        opts.Backend,
		authorize:      opts.Authorize,
		authorizeAdmin: opts.AuthorizeAdmin,
		systemKey:      opts.SystemKey,
		connection:     opts.ConnectionName,
		maxBody:        opts.MaxBodyBytes,
		maxPage:        opts.MaxPageBytes,
		log:            opts.Logger,
		guard:          opts.Guard,
	}
	if a.connection == "" {
		a.connection = "Storage"
	}
	if a.maxBody <= 0 {
		a.maxBody = 4 << 20
	}
	if a.maxPage <= 0 {
		a.maxPage = DefaultMaxPageBytes
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

// ServeHTTP answers requests under WebhookBase and RPCBase; any other path is 404. RPCBase needs no
// key: it answers callers on this machine that connect directly (no forwarding headers), address
// it by a loopback name, and are not a page of another site (Options.Guard).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The escaped path keeps %2F inside a segment, so an instance ID containing '/' arrives as one
	// segment (and is then rejected as invalid) instead of silently changing the route.
	rest, base, ok := cutBase(r.URL.EscapedPath())
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	switch base {
	case WebhookBase:
		if a.authorize != nil && !a.authorize(r) {
			writeError(w, http.StatusUnauthorized, errorBody{Message: unauthorizedMessage})
			return
		}
	case RPCBase:
		// The RPC base needs no key, as in the extension, so it must not be reachable from outside
		// this machine, nor from the web pages its browser shows.
		why := a.guard.CheckLoopbackPeer(r, RPCBase)
		if why == nil {
			why = a.guard.CheckBrowser(r)
		}
		if why != nil {
			localguard.Refuse(w, why)
			return
		}
	}
	segs, ok := splitSegments(rest)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	q := parseQuery(r.URL.RawQuery)
	if err := checkRequestText(segs, q, r.Header.Get(continuationHeader)); err != nil {
		badRequest(w, err)
		return
	}
	// One host serves one task hub. A request for another hub must not act on this one (in Durable
	// Functions another hub is other storage, where these instances do not exist).
	if hub := q.first("taskHub"); hub != "" && !strings.EqualFold(hub, a.backend.Hub()) {
		writeError(w, http.StatusNotFound, errorBody{
			Message: "Task hub " + strconv.Quote(hub) + " is not served by this host; it serves " +
				strconv.Quote(a.backend.Hub()) + ". Leave taskHub out or point the request at the host of that hub.",
		})
		return
	}
	a.route(w, r, base, segs, q)
}

// cutBase strips whichever base path the escaped path starts with (case-insensitively, as the
// Functions host matches routes), returning the remainder and the base.
func cutBase(path string) (rest, base string, ok bool) {
	for _, b := range [...]string{WebhookBase, RPCBase} {
		if len(path) < len(b) || !strings.EqualFold(path[:len(b)], b) {
			continue
		}
		rest = path[len(b):]
		if rest == "" || rest[0] == '/' {
			return rest, b, true
		}
	}
	return "", "", false
}

// splitSegments splits the route part of an escaped path into URL-decoded segments, ignoring
// leading and trailing slashes. Empty inner segments ("instances//terminate") match no route.
func splitSegments(rest string) ([]string, bool) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return nil, false
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		if s == "" {
			return nil, false
		}
		// PathUnescape leaves '+' alone, which is right for paths.
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

// route dispatches to the handler of one row of the route table (docs/compat/durable-functions-http.md §2), in the
// extension's order. A known path with the wrong method is 404, as in the extension.
func (a *API) route(w http.ResponseWriter, r *http.Request, base string, segs []string, q query) {
	m := r.Method
	switch {
	case strings.EqualFold(segs[0], "orchestrators"):
		if m == http.MethodPost && (len(segs) == 2 || len(segs) == 3) {
			id := ""
			if len(segs) == 3 {
				id = segs[2]
			}
			a.start(w, r, q, segs[1], id)
			return
		}

	case strings.EqualFold(segs[0], "entities"):
		if a.entities(w, r, base, segs, q) {
			return
		}

	case strings.EqualFold(segs[0], "instances"):
		switch {
		case len(segs) == 1 && m == http.MethodGet:
			a.list(w, r, q)
			return
		case len(segs) == 1 && m == http.MethodDelete:
			a.purgeMany(w, r, q)
			return
		case len(segs) == 2 && m == http.MethodGet:
			a.status(w, r, q, segs[1])
			return
		case len(segs) == 2 && m == http.MethodDelete:
			a.purgeOne(w, r, segs[1])
			return
		case len(segs) == 3 && m == http.MethodGet && strings.EqualFold(segs[2], "history"):
			a.exportHistory(w, r, segs[1])
			return
		case len(segs) == 3 && m == http.MethodPost:
			if a.operation(w, r, q, segs[1], segs[2]) {
				return
			}
		case len(segs) == 4 && m == http.MethodPost && strings.EqualFold(segs[2], "raiseEvent"):
			a.raiseEvent(w, r, segs[1], segs[3])
			return
		}

	case strings.EqualFold(segs[0], "makeprimary"):
		// App-lease failover of Azure Storage; there is nothing to fail over here, so it succeeds.
		if len(segs) == 1 {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
}

// operation handles POST instances/{id}/{operation}; it reports false for an unknown operation.
func (a *API) operation(w http.ResponseWriter, r *http.Request, q query, id, op string) bool {
	switch strings.ToLower(op) {
	case "terminate":
		a.command(w, r, id, q.first("reason"), a.backend.Terminate)
	case "suspend":
		a.command(w, r, id, q.first("reason"), a.backend.Suspend)
	case "resume":
		a.command(w, r, id, q.first("reason"), a.backend.Resume)
	case "rewind":
		a.rewind(w, r, id, q.first("reason"))
	case "restart":
		a.restart(w, r, q, id)
	default:
		return false
	}
	return true
}
