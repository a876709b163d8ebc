package reprise_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/reprise-dev/reprise"
)

// TestRequestsDuringStartDoNotWait: while Start opens a store that does not answer, requests
// are answered at once (503: not started) instead of waiting for Start behind the App's lock.
func TestRequestsDuringStartDoNotWait(t *testing.T) {
	// A "PostgreSQL server" that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connected := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			connected <- c
		}
	}()
	app := reprise.NewApp(reprise.WithPostgres("postgres://nobody@"+ln.Addr().String()+"/x?sslmode=disable"),
		reprise.WithLogger(slog.New(slog.DiscardHandler)), reprise.WithAnonymousManagement())
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() { started <- app.Start(ctx) }()
	select {
	case c := <-connected: // Start is inside the store's Open now
		defer c.Close()
	case err := <-started:
		cancel()
		t.Fatalf("Start returned %v before connecting to the store", err)
	}

	answered := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/runtime/webhooks/durabletask/instances", nil))
		answered <- rec.Code
	}()
	blocked := false
	select {
	case code := <-answered:
		if code != http.StatusServiceUnavailable {
			t.Errorf("a request during Start: %d, want 503", code)
		}
	case <-time.After(10 * time.Second): // a failure bound, not a synchronisation
		t.Error("a request during Start waits for Start to finish")
		blocked = true
	}
	cancel()
	if err := <-started; err == nil {
		t.Fatal("Start succeeded on a store that never answered")
	}
	if blocked {
		<-answered // it is answered once Start gave up
	}
	if err := app.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
