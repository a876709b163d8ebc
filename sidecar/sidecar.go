// Package sidecar serves the Durable Task gRPC protocol (TaskHubSidecarService, the protocol of
// the Durable Task SDKs for JavaScript, Python, Java, .NET and Go) for a Reprise App's task hub,
// beside the App's own Go functions and HTTP API.
//
// The SDKs' clients start and manage instances of the hub, and their workers run the
// orchestrators and activities they register. A worker that sends no work-item filters gets
// every name except those registered with the App, so Go code and remote workers share the hub,
// each running only what it has: a Go orchestrator can call an activity that only a JavaScript
// worker runs, and the other way round. `reprise serve` is this package on an App with no
// registrations. docs/grpc.md says what is served.
//
// The package is apart from package reprise on purpose: the Durable Task SDK for Go carries its
// own copy of the protocol's generated code, which cannot share a binary with this one, so
// programs that link that SDK can still use Reprise, without this package.
package sidecar

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/store"
)

// DefaultAddr is the address served when neither Options.Addr nor REPRISE_GRPC_ADDR gives one:
// loopback, where calls need no key.
const DefaultAddr = "127.0.0.1:4001"

// Options configure a Server. Zero values take the defaults documented on each field.
type Options struct {
	// Addr is the address to listen on, HOST:PORT; default REPRISE_GRPC_ADDR, else DefaultAddr.
	// On a loopback address calls need no key; on any other, every call must carry the master or
	// system key (see Keys).
	Addr string
	// Keys are the keys calls must carry off loopback; default REPRISE_MASTER_KEY and
	// REPRISE_SYSTEM_KEY, else the keys the App generated and keeps in its store (what
	// `reprise keys` prints).
	Keys Keys
	// RequireKeys makes calls carry a key on a loopback address too.
	RequireKeys bool
	// TLS, when set, serves gRPC over TLS with this configuration (its certificate), so that keys
	// and payloads do not cross the network readable. When it also verifies client certificates
	// (ClientAuth tls.RequireAndVerifyClientCert), the certificate identifies the caller and calls
	// need no key off loopback; otherwise they still do.
	TLS *tls.Config
	// Grace is how long the calls in flight get to finish at Shutdown (the waits and the worker
	// streams end at once); default 5s.
	Grace time.Duration
	// LeaseDuration is the lease of the work items the worker streams hold; default 30s. A turn
	// must be completed within it; an activity's lease is renewed for as long as its stream
	// lives. After a crash of the server, the items its streams held are handed out again when
	// their leases end.
	LeaseDuration time.Duration
	// Logger receives the server's and its workers' logs; default slog.Default().
	Logger *slog.Logger
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
}

// Keys are the keys a call may carry in its metadata (x-functions-key, or authorization:
// Bearer), compared in constant time.
type Keys struct {
	Master, System string
}

// Server serves the protocol for one App until Shutdown.
type Server struct {
	gs       *grpc.Server
	ln       net.Listener
	signals  *engine.Signals
	endCalls context.CancelFunc
	served   chan error
	access   string
	grace    time.Duration
}

// Listen listens on the address the options give and serves the protocol for the task hub of
// app, which must have started, until Shutdown. It returns once the address listens.
func Listen(ctx context.Context, app *reprise.App, opts Options) (*Server, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	addr := cmp.Or(opts.Addr, getenv("REPRISE_GRPC_ADDR"), DefaultAddr)
	st, err := app.Store()
	if err != nil {
		return nil, fmt.Errorf("sidecar: start the App first: %w", err)
	}
	loopback, err := isLoopback(addr)
	if err != nil {
		return nil, err
	}
	var serverOpts []grpc.ServerOption
	access := "no key (loopback only: every caller is on this machine)"
	mutual := opts.TLS != nil && opts.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	if mutual && !opts.RequireKeys {
		access = "a client certificate the server's client CA signed (TLS)"
	} else if !loopback || opts.RequireKeys {
		keys, err := resolveKeys(ctx, st, opts.Keys, getenv)
		if err != nil {
			return nil, err
		}
		if serverOpts, err = grpcapi.KeyOptions(grpcapi.Keys{Master: keys.Master, System: keys.System}); err != nil {
			return nil, fmt.Errorf("sidecar: %s is not a loopback address, so gRPC calls need a key, and there is none: "+
				"set REPRISE_MASTER_KEY or REPRISE_SYSTEM_KEY, or listen on 127.0.0.1", addr)
		}
		access = "master or system key in metadata " + grpcapi.KeyMetadata + " (or authorization: Bearer); print them with `reprise keys`"
	}
	if opts.TLS != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(opts.TLS)))
		access += "; TLS"
	} else {
		access += "; plain text"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sidecar: listen for gRPC on %s (set the address with REPRISE_GRPC_ADDR or --grpc): %w", addr, err)
	}
	// Shutdown ends the waits and the worker streams (their work is given back) at once, so
	// that they do not hold the stop; the other calls get the grace period.
	shutdown, endCalls := context.WithCancel(context.Background())
	// The key check runs first, so a refused call never reaches the service.
	serverOpts = append(serverOpts, grpcapi.ServerOptions()...)
	gs := grpc.NewServer(append(serverOpts, grpcapi.ShutdownOptions(shutdown)...)...)
	orchestrators, activities := app.Registered()
	signals := engine.NewSignals(st)
	work := &grpcapi.Work{Store: st, Signals: signals, Logger: logger, LeaseDuration: opts.LeaseDuration,
		TakenOrchestrators: orchestrators, TakenActivities: activities, TakenEntities: app.RegisteredEntities()}
	if mp := app.MeterProvider(); mp != nil {
		// The same instruments as the App's (a provider hands out one instrument per name), so
		// the work of remote workers adds to the App's numbers on /metrics.
		if work.Metrics, err = metrics.New(mp); err != nil {
			ln.Close()
			endCalls()
			return nil, fmt.Errorf("sidecar: %w", err)
		}
	}
	hub := st.Hub()
	pb.RegisterTaskHubSidecarServiceServer(gs, grpcapi.NewService(grpcapi.Hub{
		Name: hub, Plane: control.New(st, control.Options{Hub: hub}), Work: work}))
	s := &Server{gs: gs, ln: ln, signals: signals, endCalls: endCalls, served: make(chan error, 1),
		access: access, grace: cmp.Or(opts.Grace, 5*time.Second)}
	go func() { s.served <- gs.Serve(ln) }()
	logger.Info("gRPC (Durable Task SDKs)", "addr", ln.Addr().String(), "hub", hub, "access", access)
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Access describes what calls must carry: no key on loopback, else a key in their metadata.
func (s *Server) Access() string { return s.access }

// Done receives the error that stopped the server from serving (nil after Shutdown).
func (s *Server) Done() <-chan error { return s.served }

// Shutdown stops taking calls, ends the waits and the worker streams at once (the work items
// they hold are given back, to be delivered again when a worker reconnects, here or to another
// server on the store), lets the other calls in flight finish for the grace period (or until
// ctx ends) and stops.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endCalls()
	done := make(chan struct{})
	go func() { s.gs.GracefulStop(); close(done) }()
	t := time.NewTimer(s.grace)
	defer t.Stop()
	var err error
	select {
	case <-done:
	case <-t.C:
		s.gs.Stop()
		<-done
	case <-ctx.Done():
		s.gs.Stop()
		<-done
		err = ctx.Err()
	}
	s.signals.Close()
	return err
}

// isLoopback reports whether addr (HOST:PORT) listens on loopback only.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("sidecar: gRPC address %q: %v; give HOST:PORT, such as %s", addr, err, DefaultAddr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// resolveKeys returns the keys calls may carry, as the management API takes them: each one
// given, else configured (REPRISE_MASTER_KEY, REPRISE_SYSTEM_KEY), else the one the App
// generated at Start and keeps in the store.
func resolveKeys(ctx context.Context, st store.Store, given Keys, getenv func(string) string) (Keys, error) {
	gen, err := reprise.ReadGeneratedKeys(ctx, reprise.WithStore(st), reprise.WithHub(st.Hub()))
	if err != nil {
		return Keys{}, fmt.Errorf("sidecar: read the keys for gRPC: %w", err)
	}
	return Keys{
		Master: cmp.Or(given.Master, getenv("REPRISE_MASTER_KEY"), gen.Master),
		System: cmp.Or(given.System, getenv("REPRISE_SYSTEM_KEY"), gen.System),
	}, nil
}

// LoadTLS returns the TLS configuration of a server from PEM files: its certificate and key and,
// when clientCA is not "", the CA that must have signed every client's certificate.
func LoadTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("sidecar: load the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("sidecar: read the client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sidecar: the client CA %s holds no PEM certificate", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
