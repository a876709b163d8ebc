package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

const serveUsage = `Usage: reprise serve [--store S] [--hub NAME] [--addr HOST:PORT] [--grpc HOST:PORT]

Runs a standalone Reprise server on a store, with no Go code of yours: the Durable Task gRPC
protocol (TaskHubSidecarService, the protocol of the Durable Task SDKs) on --grpc, and the Durable
Functions management API and the dashboard on --addr, over the same instances. Stop it with
Ctrl-C or SIGTERM: it stops taking calls, lets those in flight finish and closes the store.

The gRPC side serves the SDKs' clients (start, get, wait, raise, terminate, suspend, resume,
restart, rewind, query, purge, history) and their workers (GetWorkItems and the completions):
an SDK worker connected here runs the orchestrators and activities it registered, and each work
item it holds goes to another worker at once if its stream ends. Entities are not served yet
(docs/grpc.md).

Flags:
  --store S         SQLite file or postgres:// DSN (env REPRISE_STORE, default reprise.db in the
                    working directory)
  --hub NAME        task hub (env REPRISE_HUB, default "default")
  --addr HOST:PORT  HTTP address (env REPRISE_ADDR, default 127.0.0.1:7071)
  --grpc HOST:PORT  gRPC address (env REPRISE_GRPC_ADDR, default 127.0.0.1:4001)

gRPC keys: on a loopback address (127.0.0.1, ::1, localhost) gRPC calls need no key. On any other
address (such as 0.0.0.0:4001) every call, Hello included, must carry the master or system key as
gRPC metadata x-functions-key: <key> (or authorization: Bearer <key>), as the management API
takes them: REPRISE_MASTER_KEY and REPRISE_SYSTEM_KEY when set, else the keys the server
generated at its first start and keeps in the store, which "reprise keys --store S" prints. A call
without a valid key answers UNAUTHENTICATED. The keys travel unencrypted (no TLS yet): off a
trusted network, put a TLS-terminating proxy in front. The start-up output says which mode runs.

Exit codes: 0 stopped by a signal, 1 the store could not be opened or serving failed, 2 usage
error.
`

// Defaults of reprise serve.
const (
	defaultServeAddr = "127.0.0.1:7071"
	defaultGRPCAddr  = "127.0.0.1:4001"
	// grpcGrace is how long the RPCs in flight get to end at shutdown before they are cancelled.
	grpcGrace = 5 * time.Second
)

// runServe is `reprise serve`. It runs until ctx ends (main cancels it on SIGINT and SIGTERM).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return serve(ctx, args, stdout, stderr, getenv, false)
}

// serve is runServe; keysOnLoopback makes gRPC require keys on a loopback address too, which
// lets the tests (which reach loopback only) drive the keyed mode a public address gets.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, keysOnLoopback bool) int {
	flags := newFlagSet("reprise serve")
	storeFlag := flags.String("store", firstNonEmpty(getenv("REPRISE_STORE"), reprise.DefaultStorePath), "")
	hub := flags.String("hub", firstNonEmpty(getenv("REPRISE_HUB"), "default"), "")
	addr := flags.String("addr", firstNonEmpty(getenv("REPRISE_ADDR"), defaultServeAddr), "")
	grpcAddr := flags.String("grpc", firstNonEmpty(getenv("REPRISE_GRPC_ADDR"), defaultGRPCAddr), "")
	rest, err := parseArgs(flags, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, serveUsage)
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("serve takes no arguments, got %q", rest)
	}
	var loopback bool
	if err == nil {
		loopback, err = isLoopbackAddr(*grpcAddr)
	}
	if err != nil {
		return reportUsage(stderr, err.Error(), serveUsage)
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	st, desc, err := openServeStore(ctx, *storeFlag, *hub, logger)
	if err != nil {
		fmt.Fprintln(stderr, "reprise: "+err.Error())
		return exitHostError
	}
	defer st.Close()

	// The HTTP side is an App without registrations on the same store: the management API and
	// the dashboard see the instances that gRPC clients start.
	app := reprise.NewApp(reprise.WithStore(st), reprise.WithHub(*hub), reprise.WithLogger(logger))
	if err := app.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "reprise: start: "+err.Error())
		return exitHostError
	}
	// The keys exist once the App has started: the configured ones, else those it generated and
	// keeps in the store.
	keys, err := grpcKeys(ctx, st, *hub, getenv)
	if err != nil {
		_ = app.Shutdown(context.Background())
		fmt.Fprintln(stderr, "reprise: "+err.Error())
		return exitHostError
	}
	grpcOpts, access, err := grpcAccess(*grpcAddr, loopback && !keysOnLoopback, keys)
	if err != nil {
		_ = app.Shutdown(context.Background())
		fmt.Fprintln(stderr, "reprise: "+err.Error())
		return exitHostError
	}
	httpLn, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = app.Shutdown(context.Background())
		fmt.Fprintf(stderr, "reprise: listen for HTTP on %s (set --addr or REPRISE_ADDR to use another address): %v\n", *addr, err)
		return exitHostError
	}
	grpcLn, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		httpLn.Close()
		_ = app.Shutdown(context.Background())
		fmt.Fprintf(stderr, "reprise: listen for gRPC on %s (set --grpc or REPRISE_GRPC_ADDR to use another address): %v\n", *grpcAddr, err)
		return exitHostError
	}

	// Shutdown ends the waits in flight (UNAVAILABLE) so that they do not hold the stop.
	shutdown, endCalls := context.WithCancel(context.Background())
	defer endCalls()
	// The key check runs first, so a refused call never reaches the shutdown wrapper or the service.
	grpcOpts = append(grpcOpts, grpcapi.ServerOptions()...)
	gs := grpc.NewServer(append(grpcOpts, grpcapi.ShutdownOptions(shutdown)...)...)
	signals := engine.NewSignals(st)
	defer signals.Close()
	work := &grpcapi.Work{Store: st, Signals: signals, Logger: logger}
	pb.RegisterTaskHubSidecarServiceServer(gs, grpcapi.NewService(grpcapi.Hub{Name: *hub, Plane: control.New(st, control.Options{Hub: *hub}), Work: work}))
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- gs.Serve(grpcLn) }()
	// App.Serve shuts the App down when its context ends; that comes after gRPC has stopped,
	// so that no RPC runs on a closed store.
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- app.Serve(httpCtx, httpLn) }()

	fmt.Fprintf(stdout, "reprise serve: task hub %q on %s\n", *hub, desc)
	fmt.Fprintf(stdout, "gRPC (Durable Task SDKs): %s\n", grpcLn.Addr())
	fmt.Fprintf(stdout, "gRPC access: %s\n", access)
	logger.Info("gRPC", "addr", grpcLn.Addr().String(), "access", access)
	fmt.Fprintf(stdout, "HTTP (management API, dashboard): http://%s\n", httpLn.Addr())

	var failure error
	select {
	case <-ctx.Done():
	case err := <-grpcDone:
		failure = fmt.Errorf("gRPC server: %w", err)
		grpcDone <- nil
	case err := <-httpDone:
		failure = fmt.Errorf("HTTP server: %w", err)
		if err == nil {
			failure = errors.New("HTTP server stopped")
		}
		httpDone <- nil
	}
	endCalls()
	stopGRPC(gs)
	<-grpcDone
	stopHTTP()
	if err := <-httpDone; err != nil && failure == nil {
		failure = err
	}
	if failure != nil {
		fmt.Fprintln(stderr, "reprise: serve: "+failure.Error())
		return exitHostError
	}
	fmt.Fprintln(stdout, "reprise serve: stopped")
	return exitOK
}

// stopGRPC lets the RPCs in flight finish, for grpcGrace at most, then cancels them: the waits
// end at once (ShutdownOptions), and no other call may hold the shutdown either.
func stopGRPC(gs *grpc.Server) {
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	t := time.NewTimer(grpcGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		gs.Stop()
		<-done
	}
}

// isLoopbackAddr reports whether addr (HOST:PORT) listens on loopback only.
func isLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("--grpc %q: %v; give HOST:PORT, such as %s", addr, err, defaultGRPCAddr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// grpcKeys returns the keys gRPC calls may carry, as the management API takes them: each
// configured one (REPRISE_MASTER_KEY, REPRISE_SYSTEM_KEY), else the one the App generated at
// Start and keeps in the store (what `reprise keys` prints).
func grpcKeys(ctx context.Context, st store.Store, hub string, getenv func(string) string) (grpcapi.Keys, error) {
	gen, err := reprise.ReadGeneratedKeys(ctx, reprise.WithStore(st), reprise.WithHub(hub))
	if err != nil {
		return grpcapi.Keys{}, fmt.Errorf("read the keys for gRPC: %w", err)
	}
	return grpcapi.Keys{
		Master: firstNonEmpty(getenv("REPRISE_MASTER_KEY"), gen.Master),
		System: firstNonEmpty(getenv("REPRISE_SYSTEM_KEY"), gen.System),
	}, nil
}

// grpcAccess decides how gRPC is served on addr: open (no key) when open is true, which serve
// sets for a loopback address (only this machine reaches it, as the keyless /durabletask/ base of
// the HTTP API); else every call needs the master or system key, and with no key it refuses to
// serve rather than open a public address to anyone. It returns the server options and a
// description of the mode for the log.
func grpcAccess(addr string, open bool, keys grpcapi.Keys) ([]grpc.ServerOption, string, error) {
	if open {
		return nil, "no key (loopback only: every caller is on this machine)", nil
	}
	opts, err := grpcapi.KeyOptions(keys)
	if err != nil {
		return nil, "", fmt.Errorf("--grpc %s is not a loopback address, so gRPC calls need a key, and there is none: "+
			"set REPRISE_MASTER_KEY or REPRISE_SYSTEM_KEY, or listen on 127.0.0.1", addr)
	}
	return opts, "master or system key in metadata " + grpcapi.KeyMetadata + " (or authorization: Bearer); print them with `reprise keys`", nil
}

// openServeStore opens the store that --store names for the hub, and describes it without secrets.
func openServeStore(ctx context.Context, s, hub string, logger *slog.Logger) (store.Store, string, error) {
	if isPostgresDSN(s) {
		st, err := postgres.Open(ctx, s, postgres.Options{Hub: hub, Logger: logger})
		if err != nil {
			return nil, "", fmt.Errorf("open the PostgreSQL store: %w", err)
		}
		return st, "PostgreSQL", nil
	}
	st, err := sqlite.Open(ctx, s, sqlite.Options{Hub: hub})
	if err != nil {
		return nil, "", fmt.Errorf("open the SQLite store %s: %w", s, err)
	}
	return st, "SQLite " + s, nil
}
