package reprise

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/internal/localguard"
)

// Keys are the access keys of a host, as in Azure Functions. A key is passed as the code query
// parameter or the x-functions-key header.
type Keys struct {
	// Master is the admin key: it opens every route, the management API and the dashboard
	// included. When it is empty, the App uses the one it generated at its first start and keeps
	// in the store, per task hub (`reprise keys` prints it).
	Master string
	// Host keys open every route of level AuthFunction.
	Host []string
	// System is the key of the Durable Functions management API (the durabletask_extension system
	// key). When it is empty and the management API is not anonymous, the App uses the one it
	// generated at its first start and keeps in the store, as the master key; the URLs of
	// check-status responses carry it, so they keep working after a restart.
	System string
	// Functions maps a route's function name (see FunctionName) to keys that open only that route.
	Functions map[string][]string
}

// AuthLevel is the key a route requires, as the authLevel of an HTTP-triggered function.
type AuthLevel int

const (
	// AuthFunction (the default, as in Azure Functions) requires a function key of the route, a
	// host key or the master key.
	AuthFunction AuthLevel = iota
	// AuthAnonymous requires no key.
	AuthAnonymous
	// AuthAdmin requires the master key.
	AuthAdmin
)

func (l AuthLevel) applyRoute(r *route) { r.level = l }

// RouteOption configures a route added with App.Handle or App.HandleFunc: an AuthLevel, or a
// FunctionName.
type RouteOption interface{ applyRoute(*route) }

type routeOptionFunc func(*route)

func (f routeOptionFunc) applyRoute(r *route) { f(r) }

// FunctionName names the function a route serves, so that Keys.Functions can hold keys for it.
// By default the name is the route's pattern.
func FunctionName(name string) RouteOption { return routeOptionFunc(func(r *route) { r.name = name }) }

type route struct {
	name  string
	level AuthLevel
}

// Handle adds a user route: pattern is a net/http ServeMux pattern such as
// "POST /api/start-sequence". The route requires a key of its AuthLevel (AuthFunction unless
// given). It panics if the pattern is invalid or conflicts with another route, which is a
// programming error.
func (a *App) Handle(pattern string, h http.Handler, opts ...RouteOption) {
	rt := route{name: pattern}
	for _, o := range opts {
		o.applyRoute(&rt)
	}
	a.routes = append(a.routes, rt)
	a.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, maxBody, guard, ok := a.running()
		if !ok {
			writeMessage(w, http.StatusServiceUnavailable, "the app is not running: it has not started or is shutting down")
			return
		}
		// An anonymous route served on a loopback address is a local developer's: keep web pages
		// out of it. On a public address it is the app's public API, which the app guards itself.
		if rt.level == AuthAnonymous && localguard.IsLoopbackConn(r) && !guardKeyless(w, r, guard) {
			return
		}
		if !keys.allows(r, rt) {
			writeMessage(w, http.StatusUnauthorized, unauthorizedMessage(rt.level))
			return
		}
		if r.ContentLength > maxBody {
			// Before the first read, so a client that sent Expect: 100-continue uploads nothing.
			writeMessage(w, http.StatusRequestEntityTooLarge, "the request body ("+strconv.FormatInt(r.ContentLength, 10)+
				" bytes) is larger than the limit of "+strconv.FormatInt(maxBody, 10)+" bytes (WithMaxRequestBody, REPRISE_MAX_REQUEST_BODY)")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, requestTraced(r))
	}))
}

// HandleFunc is Handle for a function.
func (a *App) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request), opts ...RouteOption) {
	a.Handle(pattern, http.HandlerFunc(h), opts...)
}

// Handler returns the App's HTTP handler: the user routes, the Durable Functions management
// API under /runtime/webhooks/durabletask/ (and /durabletask/ for loopback callers) and the
// dashboard under /dashboard/. Use it to serve the App from your own http.Server;
// ListenAndServe does that for you. Under your server, /durabletask/ judges the caller by
// Request.RemoteAddr (Serve records the connection's own address): do not rewrite it from
// forwarding headers, and set the server's timeouts (see ServerTimeouts).
func (a *App) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// ListenAndServe starts the App if it has not started, serves its Handler on the configured
// address (127.0.0.1:7071 unless WithAddr or REPRISE_ADDR say otherwise) until ctx ends, then
// shuts down gracefully: requests and running work get the shutdown timeout to finish.
func (a *App) ListenAndServe(ctx context.Context) error {
	if err := a.startIfNeeded(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.addr)
	if err != nil {
		_ = a.shutdownWithin(a.cfg.shutdownTimeout)
		return fmt.Errorf("reprise: listen on %s (set REPRISE_ADDR or WithAddr to use another address): %w", a.cfg.addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener of your own.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if err := a.startIfNeeded(ctx); err != nil {
		ln.Close()
		return err
	}
	srv := a.newServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.logger.Info("host listening", "addr", ln.Addr().String(), "hub", a.cfg.hub, "store", a.storeDescription())
	a.logDashboard(ln.Addr())
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if aerr := a.Shutdown(shutdownCtx); err == nil {
		err = aerr
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("reprise: serve: %w", serveErr)
	}
	return err
}

func (a *App) startIfNeeded(ctx context.Context) error {
	a.mu.Lock()
	started := a.eng != nil
	a.mu.Unlock()
	if started {
		return nil
	}
	return a.Start(ctx)
}

func (a *App) shutdownWithin(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return a.Shutdown(ctx)
}

func (a *App) storeDescription() string {
	if a.cfg.store != nil {
		if named, ok := a.cfg.store.(fmt.Stringer); ok {
			return named.String()
		}
		return fmt.Sprintf("%T", a.cfg.store)
	}
	if a.cfg.postgresDSN != "" {
		return "postgres:" + redactDSN(a.cfg.postgresDSN)
	}
	return "sqlite:" + a.cfg.storePath
}

// running returns the keys, body limit and guard of a started App that is not shutting down.
func (a *App) running() (keyring, int64, *localguard.Guard, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys, a.cfg.maxBody, a.guard, a.eng != nil && !a.stopped
}

// guardKeyless applies the local guard (package localguard: loopback Host names only, no
// state-changing request from a page of another site) to a request that a route serves without
// a key. It is the one gate of every keyless route: the management API and the dashboard when
// anonymous, anonymous user routes on a loopback address, and (inside httpapi, with the same
// guard) /durabletask/. It reports false when it has answered 403.
func guardKeyless(w http.ResponseWriter, r *http.Request, g *localguard.Guard) bool {
	if why := g.CheckBrowser(r); why != nil {
		localguard.Refuse(w, why)
		return false
	}
	return true
}

// mountManagement adds the management API routes. Until Start they answer 503.
func (a *App) mountManagement() {
	serve := func(webhook bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.mu.Lock()
			api, anonymous, guard := a.api, a.keys.anonMgmt, a.guard
			a.mu.Unlock()
			if api == nil {
				writeMessage(w, http.StatusServiceUnavailable, "the app is not running: it has not started or is shutting down")
				return
			}
			// The RPC base is guarded inside the API, which knows which base a path matched.
			if webhook && anonymous && !guardKeyless(w, r, guard) {
				return
			}
			api.ServeHTTP(w, requestTraced(r))
		})
	}
	for _, p := range []string{httpapi.WebhookBase, httpapi.WebhookBase + "/"} {
		a.mux.Handle(p, serve(true))
	}
	for _, p := range []string{httpapi.RPCBase, httpapi.RPCBase + "/"} {
		a.mux.Handle(p, serve(false))
	}
}

func (a *App) warnAboutKeys() {
	k := a.cfg.keys
	keyed := 0
	for _, rt := range a.routes {
		if rt.level != AuthAnonymous {
			keyed++
		}
	}
	hasKeys := k.Master != "" || len(k.Host) > 0 || len(k.Functions) > 0 // configured, not generated
	if !hasKeys && keyed > 0 {
		a.logger.Warn("no master, host or function keys are configured: routes of level AuthFunction and AuthAdmin open only with the generated master key (print it with `reprise keys`); set REPRISE_HOST_KEYS (or WithKeys) for their callers, or make the routes AuthAnonymous")
	}
	if a.cfg.anonymousManagement {
		a.logger.Warn("the management API is anonymous: anyone who can reach this host can manage its instances")
	}
}

// keyring holds the hashes of the configured keys. Candidates are hashed too and compared in
// constant time, so neither the keys nor their lengths leak through timing.
type keyring struct {
	master    [][sha256.Size]byte
	host      [][sha256.Size]byte
	functions map[string][][sha256.Size]byte
	sys       [][sha256.Size]byte
	system    string // put in generated management URLs
	anonMgmt  bool
}

func newKeyring(k Keys, anonymousManagement bool) (keyring, error) {
	kr := keyring{anonMgmt: anonymousManagement, functions: map[string][][sha256.Size]byte{}}
	add := func(dst *[][sha256.Size]byte, what, key string) error {
		if strings.TrimSpace(key) != key || key == "" {
			return fmt.Errorf("reprise: invalid setting %s: a key must not be empty or start or end with spaces", what)
		}
		*dst = append(*dst, sha256.Sum256([]byte(key)))
		return nil
	}
	if k.Master != "" {
		if err := add(&kr.master, "master key (REPRISE_MASTER_KEY)", k.Master); err != nil {
			return kr, err
		}
	}
	for _, h := range k.Host {
		if err := add(&kr.host, "host keys (REPRISE_HOST_KEYS)", h); err != nil {
			return kr, err
		}
	}
	for name, keys := range k.Functions {
		list := kr.functions[name]
		for _, key := range keys {
			if err := add(&list, "function keys of "+name+" (REPRISE_FUNCTION_KEYS)", key); err != nil {
				return kr, err
			}
		}
		kr.functions[name] = list
	}
	kr.system = k.System // generated by hostKeys when not configured
	if kr.system != "" {
		if err := add(&kr.sys, "system key (REPRISE_SYSTEM_KEY)", kr.system); err != nil {
			return kr, err
		}
	}
	if anonymousManagement {
		kr.system = "" // generated URLs carry no key
	}
	return kr, nil
}

// requestKey returns the key a request carries: the code query parameter or the
// x-functions-key header.
func requestKey(r *http.Request) string {
	if k := r.Header.Get("x-functions-key"); k != "" {
		return k
	}
	return r.URL.Query().Get("code")
}

func matches(candidate [sha256.Size]byte, keys [][sha256.Size]byte) bool {
	ok := 0
	for _, k := range keys {
		ok |= subtle.ConstantTimeCompare(candidate[:], k[:])
	}
	return ok == 1
}

func (k keyring) allows(r *http.Request, rt route) bool {
	switch rt.level {
	case AuthAnonymous:
		return true
	case AuthFunction:
		return k.carries(r, k.master, k.host, k.functions[rt.name])
	}
	return k.carries(r, k.master)
}

// management authorises the management API: the system key or the master key.
func (k keyring) management(r *http.Request) bool {
	return k.anonMgmt || k.carries(r, k.sys, k.master)
}

// carries reports whether r carries one of the keys of the given sets.
func (k keyring) carries(r *http.Request, sets ...[][sha256.Size]byte) bool {
	key := requestKey(r)
	if key == "" {
		return false
	}
	h := sha256.Sum256([]byte(key))
	for _, set := range sets {
		if matches(h, set) {
			return true
		}
	}
	return false
}

func unauthorizedMessage(l AuthLevel) string {
	if l == AuthAdmin {
		return "this route requires the master key: pass it as the code query parameter or the x-functions-key header"
	}
	return "this route requires a function, host or master key: pass it as the code query parameter or the x-functions-key header"
}

// writeMessage writes an error the way the management API does: {"Message": "..."}.
func writeMessage(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(map[string]string{"Message": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
