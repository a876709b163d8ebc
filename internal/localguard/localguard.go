// Package localguard keeps the keyless routes of a host (the local RPC base /durabletask/, and the
// management API, the dashboard and anonymous user routes of a host run without keys) from being
// driven by web pages. A key stops a web page because the page cannot know it; a keyless route on
// a loopback address is reached by any page the user opens, through two doors:
//
//   - DNS rebinding: a page on attacker.example re-points its name at 127.0.0.1 and then talks to
//     the host as same-origin, reading every answer. The browser still sends Host:
//     attacker.example, so only requests addressed to a loopback name (or to a host name the
//     operator allowed) are served.
//   - Cross-site requests: a page POSTs a form or a text/plain fetch (no CORS preflight) to
//     http://127.0.0.1:7071/...; it cannot read the answer but the request takes effect. Browsers
//     say where a request comes from (Sec-Fetch-Site, Origin), so a state-changing request from a
//     page of another site is refused. A page served from a loopback origin is local software,
//     which could call the API directly anyway, so it is allowed.
//
// The local RPC base trusts its caller for being on this machine, so it must judge by the real
// peer address: Peer records the address of the connection (net/http's RemoteAddr can be
// rewritten by middleware), and a request that carries forwarding headers (it came through a
// proxy, which makes every caller look local) is refused.
//
// This package is the one place that decides these rules; the host applies Guard to every route
// that opens without a key.
package localguard

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Guard checks requests against the rules above. The zero value allows loopback hosts only.
type Guard struct {
	allowed map[string]bool // lower-cased host names or IP literals, without port
}

// New returns a Guard that also accepts the given host names (or IP addresses), compared without
// their port and case-insensitively. An entry with a scheme, path or port is an error, since it
// would never match.
func New(allowedHosts []string) (*Guard, error) {
	g := &Guard{allowed: map[string]bool{}}
	for _, h := range allowedHosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
		if strings.ContainsAny(name, "/:@?#* ") && !isIP(name) {
			return nil, fmt.Errorf("allowed host %q: want a bare host name or IP address, such as myhost.lan or 10.0.0.5 (no scheme, port or wildcard)", h)
		}
		g.allowed[name] = true
	}
	return g, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// Refusal is why a request was refused; its message says what to do.
type Refusal struct{ Message string }

func (r *Refusal) Error() string { return r.Message }

// CheckBrowser applies the rules against web pages: the Host must be a loopback name or an
// allowed host, and a state-changing request must not come from a page of another site.
func (g *Guard) CheckBrowser(r *http.Request) *Refusal {
	host := hostname(r.Host)
	if !g.localOrAllowed(host) {
		return &Refusal{fmt.Sprintf("This route opens without a key, so it answers only requests addressed to "+
			"localhost, 127.0.0.1 or [::1] (Host header %q is not one; a web page can point any name at "+
			"this machine). Address the host by a loopback name, add the name to REPRISE_ALLOWED_HOSTS "+
			"(or WithAllowedHosts), or require keys.", r.Host)}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil // safe methods change nothing; the same-origin policy keeps their answers from other sites
	}
	site := strings.ToLower(r.Header.Get("Sec-Fetch-Site"))
	if site == "same-origin" || site == "none" { // "none": the user typed it or used a bookmark
		return nil
	}
	origin := r.Header.Get("Origin")
	if site == "" && origin == "" {
		return nil // not sent by a browser (curl, the CLI, the npm client)
	}
	if o, err := url.Parse(origin); err == nil && o.Host != "" && (o.Scheme == "http" || o.Scheme == "https") {
		if strings.EqualFold(o.Host, r.Host) && site == "" {
			return nil // an older browser without Sec-Fetch-Site, same origin
		}
		if g.localOrAllowed(hostname(o.Host)) {
			return nil // a page served from this machine (or an allowed host) is trusted as a local process is
		}
	}
	from := origin
	if from == "" {
		from = "a page of another site (Sec-Fetch-Site: " + site + ")"
	}
	return &Refusal{fmt.Sprintf("Refused a %s request from %s: this route opens without a key, so it takes "+
		"state-changing requests only from this origin, local pages and non-browser clients. "+
		"Send it from the command line or a local page, or require keys.", r.Method, from)}
}

// CheckLoopbackPeer refuses a request whose connection does not come from this machine, or that
// came through a proxy (it carries a forwarding header).
func (g *Guard) CheckLoopbackPeer(r *http.Request, base string) *Refusal {
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return &Refusal{fmt.Sprintf("The %s/ endpoint answers only local callers that connect directly; this request "+
				"came through a proxy (it carries %s). Use /runtime/webhooks/durabletask/ with the system key instead.", base, h)}
		}
	}
	if !isLoopback(peer(r)) {
		return &Refusal{fmt.Sprintf("The %s/ endpoint answers only local (loopback) callers; use "+
			"/runtime/webhooks/durabletask/ with the system key (code=<key>) instead.", base)}
	}
	return nil
}

// localOrAllowed reports whether a host name (no port) is loopback or allowed.
func (g *Guard) localOrAllowed(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	return g != nil && g.allowed[host]
}

// hostname strips the port and IPv6 brackets from a Host header or an origin's host.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

type peerKey struct{}

// Peer returns ctx carrying the connection's remote address; use it as the ConnContext of an
// http.Server, so that the guard judges by the connection, not by a RemoteAddr that middleware
// may have rewritten.
func Peer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, c.RemoteAddr().String())
}

// peer is the connection's remote address when the server recorded it, else RemoteAddr.
func peer(r *http.Request) string {
	if p, ok := r.Context().Value(peerKey{}).(string); ok {
		return p
	}
	return r.RemoteAddr
}

// IsLoopbackConn reports whether the request arrived on a loopback address of this machine (the
// listener is local-only, as in local development).
func IsLoopbackConn(r *http.Request) bool {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return isLoopback(a.String())
	}
	return false
}

// isLoopback reports whether an "ip:port" (or a bare IP) is a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Refuse answers a refused request with 403 and the refusal as {"Message": ...}, the management
// API's error shape.
func Refuse(w http.ResponseWriter, why *Refusal) {
	body, _ := json.Marshal(map[string]string{"Message": why.Message})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body)
}
