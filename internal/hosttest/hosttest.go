// Package hosttest runs a Reprise App behind a test HTTP server, for the tests of function apps
// (the examples) and of the host.
package hosttest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// Options every test App gets first: a fresh SQLite file and no log output.
func Options(t testing.TB) []reprise.Option {
	return []reprise.Option{
		reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "test.db")),
		reprise.WithLogger(slog.New(slog.DiscardHandler)),
	}
}

// Serve starts app and serves its Handler on a loopback test server until the test ends.
func Serve(t testing.TB, app *reprise.App) *httptest.Server {
	t.Helper()
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// Response is an HTTP response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s %s: body is not JSON (%v): %s", r.Request.Method, r.Request.URL, err, r.Body)
	}
}

// Do sends a request and reads the whole response; a transport error fails the test.
func Do(t testing.TB, method, url string, body []byte, header ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return Response{Response: resp, Body: data}
}

// WaitDone waits until the instance has finished, failing the test after a minute.
func WaitDone(t testing.TB, app *reprise.App, id string) *reprise.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		t.Fatalf("waiting for %s: %v", id, err)
	}
	return inst
}

// WaitForHistory waits until the instance's history holds at least n events of the type,
// failing the test after 30 seconds. It polls the store: nothing signals history growth.
func WaitForHistory(t testing.TB, c *reprise.Client, id, eventType string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		inst, err := c.GetInstance(context.Background(), id, reprise.WithHistory())
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, e := range inst.History {
			if e.Type == eventType {
				count++
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: %d %s events, want %d", id, count, eventType, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
