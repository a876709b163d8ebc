package reprise

import (
	"io"
	"net/http"
	"time"

	"github.com/reprise-dev/reprise/internal/localguard"
)

// WithAllowedHosts adds host names (or IP addresses) by which the routes that open without a key
// may be addressed, besides localhost, 127.0.0.0/8 and [::1]: for a host that local tools reach by
// another name (a container's name, a machine's LAN name). Those routes are /durabletask/ and,
// when they are anonymous, the management API, the dashboard and user routes served on a loopback
// address; they refuse any other Host header with 403, because a web page can point a name it
// controls at this machine (DNS rebinding). REPRISE_ALLOWED_HOSTS (comma-separated) adds to the
// list. Give bare names, without scheme or port.
func WithAllowedHosts(hosts ...string) Option {
	return func(c *config) { c.allowedHosts = append(c.allowedHosts, hosts...) }
}

// ServerTimeouts bound how long the server of ListenAndServe and Serve waits on a client, so that
// stalled or idle clients cannot hold connections for ever. A zero field takes its default; a
// negative one disables that bound. Long requests are not cut: the wait mode of the management
// API and slow handlers may take as long as they need once the request has been read.
type ServerTimeouts struct {
	// ReadHeader bounds reading a request's headers (default 10s).
	ReadHeader time.Duration
	// Body bounds reading a request's body, from when the handler starts (default 60s). Past it,
	// reads fail with a timeout error (the management API answers 408) and the connection closes.
	Body time.Duration
	// Idle bounds how long a kept-alive connection may wait for its next request (default 2m).
	Idle time.Duration
}

// Default server timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyReadTimeout   = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// WithServerTimeouts sets the timeouts of the server of ListenAndServe and Serve. If you serve
// App.Handler from your own http.Server, set its ReadHeaderTimeout and IdleTimeout yourself.
func WithServerTimeouts(t ServerTimeouts) Option { return func(c *config) { c.timeouts = t } }

// resolveServer applies defaults and the environment to the settings of this file. The allowed
// hosts of the environment add to the code's: both are the operator's.
func (c *config) resolveServer(getenv func(string) string) {
	if v := getenv("REPRISE_ALLOWED_HOSTS"); v != "" {
		c.allowedHosts = append(c.allowedHosts, splitList(v)...)
	}
	for _, t := range []struct {
		d   *time.Duration
		def time.Duration
	}{
		{&c.timeouts.ReadHeader, DefaultReadHeaderTimeout},
		{&c.timeouts.Body, DefaultBodyReadTimeout},
		{&c.timeouts.Idle, DefaultIdleTimeout},
	} {
		switch {
		case *t.d == 0:
			*t.d = t.def
		case *t.d < 0:
			*t.d = 0 // net/http's "no timeout"
		}
	}
}

// newServer returns the http.Server of Serve.
func (a *App) newServer() *http.Server {
	t := a.cfg.timeouts
	return &http.Server{
		Handler:           bodyDeadline(http.HandlerFunc(a.serveHTTP), t.Body),
		ReadHeaderTimeout: t.ReadHeader,
		IdleTimeout:       t.Idle,
		ConnContext:       localguard.Peer, // the guard judges by the connection's address
	}
}

// bodyDeadline gives each request body d to arrive. The deadline is lifted once the body has
// been read: a read deadline left on the connection would, once it passed, cancel the context of
// a handler that is still working (net/http reads in the background to notice a client leaving).
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				// A copy: the server must keep its own Body, whose type tells it whether a
				// 100 Continue is still owed (an answer without reading sends none).
				r = r.WithContext(r.Context())
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
