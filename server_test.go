package reprise_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
)

// serve runs app with App.Serve (its own http.Server) on 127.0.0.1:0 until the test ends.
func serve(t *testing.T, app *reprise.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawConn dials addr. Its read deadline only keeps a broken server from hanging the test: the
// configured timeouts are far shorter, and the test waits for the close, not for a time.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c
}

// waitClosed reads until the server closes the connection, and returns what it sent.
func waitClosed(t *testing.T, c net.Conn, what string) string {
	t.Helper()
	data, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server did not close the connection (read so far: %q)", what, data)
	}
	return string(data)
}

func echo(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = w.Write(data)
}

// TestStalledBodyIsCut: a client that sends its headers and part of its body, then stalls, is cut
// off after the body timeout, on the management API and on user routes.
func TestStalledBodyIsCut(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(),
		reprise.WithServerTimeouts(reprise.ServerTimeouts{Body: 100 * time.Millisecond}))...)
	app.Register(sayHello, helloSequence)
	app.HandleFunc("POST /api/echo", echo, reprise.AuthAnonymous)
	addr := serve(t, app)
	for _, path := range []string{"/durabletask/orchestrators/hello_sequence_orchestrator",
		"/runtime/webhooks/durabletask/orchestrators/hello_sequence_orchestrator", "/api/echo"} {
		c := rawConn(t, addr)
		if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
			"Content-Length: 100\r\n\r\n[\"only part"); err != nil {
			t.Fatal(err)
		}
		got := waitClosed(t, c, "POST "+path+" with a stalled body")
		if path != "/api/echo" && !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Errorf("POST %s with a stalled body: answered %q, want 408", path, got)
		}
	}
	if n := instanceCount(t, app); n != 0 {
		t.Errorf("%d instances started from cut bodies", n)
	}
}

// TestIdleConnectionIsClosed: a kept-alive connection that sends nothing more is closed after the
// idle timeout; a stalled request header after the header timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(),
		reprise.WithServerTimeouts(reprise.ServerTimeouts{Idle: 100 * time.Millisecond, ReadHeader: 100 * time.Millisecond}))...)
	addr := serve(t, app)

	c := rawConn(t, addr)
	if _, err := io.WriteString(c, "GET /durabletask/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	waitClosed(t, c, "an idle kept-alive connection")

	c = rawConn(t, addr)
	if _, err := io.WriteString(c, "GET /durabletask/instances HTTP/1.1\r\nHost: 127"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "a stalled request header")
}

// TestBodyDeadlineDoesNotCutSlowHandlers: once the body is read, the handler may take longer than
// the body timeout; its context is not cancelled by the lifted deadline.
func TestBodyDeadlineDoesNotCutSlowHandlers(t *testing.T) {
	const bodyTimeout = 50 * time.Millisecond
	app := reprise.NewApp(append(hosttest.Options(t),
		reprise.WithServerTimeouts(reprise.ServerTimeouts{Body: bodyTimeout}))...)
	app.HandleFunc("POST /api/slow", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done(): // what a deadline left on the connection would do
			http.Error(w, "cancelled", http.StatusInternalServerError)
		case <-time.After(6 * bodyTimeout): // the work outlives the body timeout
			_, _ = io.WriteString(w, "done")
		}
	}, reprise.AuthAnonymous)
	addr := serve(t, app)
	resp, err := http.Post("http://"+addr+"/api/slow", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if data, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(data) != "done" {
		t.Errorf("slow handler: %d %q, want 200 done", resp.StatusCode, data)
	}
}

// TestExpectContinueOverTheLimitIs413: a client that announces a body over the limit and waits
// for 100 Continue gets 413 at once, and uploads nothing.
func TestExpectContinueOverTheLimitIs413(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement(), reprise.WithMaxRequestBody(1024))...)
	app.Register(sayHello, helloSequence)
	app.HandleFunc("POST /api/echo", echo, reprise.AuthAnonymous)
	addr := serve(t, app)
	for _, path := range []string{"/durabletask/orchestrators/hello_sequence_orchestrator",
		"/runtime/webhooks/durabletask/instances/x/raiseEvent/e", "/api/echo"} {
		c := rawConn(t, addr)
		if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
			"Content-Length: 2048\r\nExpect: 100-continue\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		if !strings.HasPrefix(status, "HTTP/1.1 413") {
			t.Errorf("POST %s announcing 2048 bytes over a 1024-byte limit: first answer %q, want 413 (no 100 Continue)", path, strings.TrimSpace(status))
		}
	}
	// Within the limit, the upload goes ahead.
	c := rawConn(t, addr)
	if _, err := io.WriteString(c, "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if status, _ := r.ReadString('\n'); !strings.HasPrefix(status, "HTTP/1.1 100") {
		t.Fatalf("within the limit: first answer %q, want 100 Continue", status)
	}
}
