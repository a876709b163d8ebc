package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// webhookPath is where a Durable Functions host serves its management API. rpcPath is the same
// API on the local RPC listener, which the JavaScript and Python clients use.
const (
	webhookPath = "/runtime/webhooks/durabletask"
	rpcPath     = "/durabletask"
)

// maxBody bounds how much of an answer is read: a list page of instances with large inputs can
// be big, but a host that streams without end must not exhaust memory.
const maxBody = 256 << 20

// continuationHeader carries the paging token of GET /instances, both ways.
const continuationHeader = "x-ms-continuation-token"

// apiClient calls the management API of one host. It knows nothing of the commands: it sends
// requests and reports answers, leaving their meaning to the caller.
type apiClient struct {
	base string // scheme://host[:port][/prefix]/runtime/webhooks/durabletask, no trailing slash
	host string // the host's URL as the user gave it, without query, for messages
	// local is the loopback route (scheme://host[:port][/prefix]/durabletask) to fall back on
	// when the webhook route refuses a request for want of a key; "" when there is none to try:
	// a key was given, the host is not loopback, or the URL names its base path.
	local   string
	key     string
	hub     string
	timeout time.Duration // per request, unless the request sets its own
	client  *http.Client
}

// newAPIClient checks the host URL and returns a client for it. The URL may be the host's root
// (the usual case), or already end in the webhook or RPC base path, which people copy from
// statusQueryGetUri links.
func newAPIClient(rawURL, key, hub string, timeout time.Duration) (*apiClient, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL // "localhost:7071" would otherwise parse as scheme "localhost"
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid --url %q: want the host's base URL, such as %s", rawURL, defaultURL)
	}
	// The query and fragment are dropped: a URL copied from a management link carries the key
	// as code=, which must not be echoed in error messages (the key goes in a header instead).
	path := strings.TrimRight(u.EscapedPath(), "/")
	host := u.Scheme + "://" + u.Host
	shown := host + path
	local := ""
	if !strings.HasSuffix(path, webhookPath) && !strings.HasSuffix(path, rpcPath) {
		if key == "" && isLoopbackHost(u.Hostname()) {
			local = host + path + rpcPath
		}
		path += webhookPath
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &apiClient{
		base:    host + path,
		local:   local,
		host:    shown,
		key:     key,
		hub:     hub,
		timeout: timeout,
		client: &http.Client{
			Transport: transport,
			// The management API never redirects. Following one would forward the key to
			// wherever it points, so a redirect is reported instead (see env.failure).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// apiResponse is an answer the caller expected.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// transportError means the request got no HTTP answer: the host is down, the name does not
// resolve, TLS failed, or the deadline passed.
type transportError struct {
	host    string
	err     error
	timeout time.Duration // the deadline that applied, for the message
}

func (e *transportError) Error() string {
	if e.timedOut() {
		return fmt.Sprintf("the host at %s did not answer within %s (is it overloaded? raise --timeout)", e.host, e.timeout)
	}
	return fmt.Sprintf("cannot reach the host at %s: %s (is it running? set --url or REPRISE_URL)", e.host, transportCause(e.err))
}

func (e *transportError) Unwrap() error { return e.err }

func (e *transportError) timedOut() bool {
	var ne net.Error
	return errors.Is(e.err, context.DeadlineExceeded) || (errors.As(e.err, &ne) && ne.Timeout())
}

// transportCause shortens the chain `Post "http://...": dial tcp 127.0.0.1:7071: connect:
// connection refused` to its useful end, since the message already names the host.
func transportCause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err.Error()
	}
	return err.Error()
}

// statusError is an answer with a status code the caller did not expect.
type statusError struct {
	method, url string
	status      int
	message     string // what the host said, from its JSON error body; may be empty
	location    string // of a redirect
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.method, e.url, httpStatus(e.status))
	if e.message != "" {
		msg += ": " + e.message
	}
	return msg
}

// httpStatus formats a status code as "404 Not Found".
func httpStatus(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// request is one call to the management API.
type request struct {
	method  string
	path    string // relative to the API base, already escaped (see instancePath)
	query   url.Values
	header  http.Header
	body    []byte        // sent as JSON when not nil
	timeout time.Duration // 0 means the client's default
	ok      []int         // the statuses the caller handles; others become *statusError
}

// isLoopbackHost reports whether a URL's host names this machine.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// do sends one request and returns the answer if its status is one the caller handles; other
// statuses come back as *statusError, and failures to get an answer as *transportError.
//
// Without a key, on a local host whose webhook route requires one (a Reprise host's does, with
// the key it generated), the request is sent again on the host's loopback route, which needs no
// key from this machine; so are the requests after it. A host whose webhook route is open (the
// Functions Core Tools) never sees the other route.
func (c *apiClient) do(ctx context.Context, r request) (*apiResponse, error) {
	resp, err := c.send(ctx, r)
	var se *statusError
	if c.local != "" && errors.As(err, &se) && se.status == http.StatusUnauthorized {
		c.base, c.local = c.local, ""
		return c.send(ctx, r)
	}
	return resp, err
}

func (c *apiClient) send(ctx context.Context, r request) (*apiResponse, error) {
	query := url.Values{}
	for k, v := range r.query {
		query[k] = v
	}
	if c.hub != "" {
		query.Set("taskHub", c.hub)
	}
	target := c.base + r.path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	timeout := r.timeout
	if timeout <= 0 {
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", r.method, redactURL(target), err)
	}
	for k, v := range r.header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reprise-cli")
	if c.key != "" {
		req.Header.Set("x-functions-key", c.key)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, &transportError{host: c.host, err: err, timeout: timeout}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &transportError{host: c.host, err: err, timeout: timeout}
	}
	if slices.Contains(r.ok, resp.StatusCode) {
		return &apiResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
	return nil, &statusError{
		method:   r.method,
		url:      redactURL(target),
		status:   resp.StatusCode,
		message:  errorMessage(data),
		location: resp.Header.Get("Location"),
	}
}

// redactURL drops the query, which may hold a key (code=) and is noise in messages.
func redactURL(target string) string {
	path, _, _ := strings.Cut(target, "?")
	return path
}

// errorMessage extracts what a Durable Functions host says in an error body:
// {"Message": "...", "ExceptionMessage": "..."}, or a bare JSON string (purge without
// createdTimeFrom answers one), or plain text from a proxy in between.
func errorMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		var parts []string
		for _, k := range []string{"Message", "ExceptionMessage", "message", "error"} {
			var s string
			if raw, ok := lookupKey(obj, k); ok && json.Unmarshal(raw, &s) == nil && s != "" && !slices.Contains(parts, s) {
				parts = append(parts, s)
			}
		}
		// The extension's generic Message ("One or more of the arguments submitted is
		// incorrect") says no more than the status code; the ExceptionMessage after it is the news.
		if len(parts) > 1 && genericMessages[parts[0]] {
			parts = parts[1:]
		}
		return joinSentences(parts)
	}
	var s string
	if json.Unmarshal(body, &s) == nil {
		return s
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return sanitize(text)
}

// genericMessages are the Message texts of the extension's catch-all answers to 400 and 500.
var genericMessages = map[string]bool{
	"One or more of the arguments submitted is incorrect": true,
	"Something went wrong while processing your request":  true,
}

// joinSentences joins the host's Message and ExceptionMessage: "Invalid JSON content: invalid
// character..." but "The instance is active. purge: ..." when the first already ends a sentence.
func joinSentences(parts []string) string {
	out := ""
	for _, p := range parts {
		switch {
		case out == "":
			out = p
		case strings.HasSuffix(out, ".") || strings.HasSuffix(out, ";"):
			out += " " + p
		default:
			out += ": " + p
		}
	}
	return out
}

// instancePath is the API path of an instance, with each further segment (an operation, an
// event name) escaped on its own, since both may hold characters that mean something in a URL
// (spaces, '%', '?', '#' in event names).
func instancePath(id string, segments ...string) string {
	p := "/instances/" + url.PathEscape(id)
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	return p
}
