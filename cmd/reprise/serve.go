package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/sidecar"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/postgres"
	"github.com/reprise-dev/reprise/store/sqlite"
)

const serveUsage = `Usage: reprise serve [--store S] [--hub NAME] [--addr HOST:PORT] [--grpc HOST:PORT]
                     [--lease D] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]

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
  --lease D         the lease of the work items a worker holds (default 30s, 1s to 1h): a
                    turn must be completed within it, and after a crash the items are handed
                    out again when it ends
  --tls-cert FILE   serve gRPC over TLS with this PEM certificate (env REPRISE_GRPC_TLS_CERT)
  --tls-key FILE    and its PEM key (env REPRISE_GRPC_TLS_KEY)
  --tls-client-ca FILE
                    require client certificates signed by this PEM CA (mutual TLS; env
                    REPRISE_GRPC_TLS_CLIENT_CA); such a certificate replaces the key off loopback
  --cpuprofile FILE write a CPU profile of the server to FILE until it stops (go tool pprof
                    reads it; reprise bench grpc --profile uses it)

gRPC keys: on a loopback address (127.0.0.1, ::1, localhost) gRPC calls need no key. On any other
address (such as 0.0.0.0:4001) every call, Hello included, must carry the master or system key as
gRPC metadata x-functions-key: <key> (or authorization: Bearer <key>), as the management API
takes them: REPRISE_MASTER_KEY and REPRISE_SYSTEM_KEY when set, else the keys the server
generated at its first start and keeps in the store, which "reprise keys --store S" prints. A call
without a valid key answers UNAUTHENTICATED. Without --tls-cert, keys and payloads travel in
plain text: off a trusted network, serve TLS (--tls-cert, --tls-key) or put a TLS-terminating
proxy in front. With --tls-client-ca, calls need a client certificate instead of a key. The
start-up output says which mode runs.

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
	lease := flags.Duration("lease", 30*time.Second, "")
	tlsCert := flags.String("tls-cert", getenv("REPRISE_GRPC_TLS_CERT"), "")
	tlsKey := flags.String("tls-key", getenv("REPRISE_GRPC_TLS_KEY"), "")
	tlsClientCA := flags.String("tls-client-ca", getenv("REPRISE_GRPC_TLS_CLIENT_CA"), "")
	cpuProfile := flags.String("cpuprofile", "", "")
	rest, err := parseArgs(flags, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, serveUsage)
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("serve takes no arguments, got %q", rest)
	}
	if err == nil {
		if _, _, serr := net.SplitHostPort(*grpcAddr); serr != nil {
			err = fmt.Errorf("--grpc %q: %v; give HOST:PORT, such as %s", *grpcAddr, serr, defaultGRPCAddr)
		}
	}
	if err == nil && (*lease < time.Second || *lease > time.Hour) {
		err = fmt.Errorf("--lease %s: give a duration from 1s to 1h", *lease)
	}
	if err == nil && (*tlsCert == "") != (*tlsKey == "") {
		err = errors.New("--tls-cert and --tls-key go together: give both, or neither for plain text")
	}
	if err == nil && *tlsClientCA != "" && *tlsCert == "" {
		err = errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS")
	}
	if err != nil {
		return reportUsage(stderr, err.Error(), serveUsage)
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		if tlsConfig, err = sidecar.LoadTLS(*tlsCert, *tlsKey, *tlsClientCA); err != nil {
			fmt.Fprintln(stderr, "reprise: "+err.Error())
			return exitHostError
		}
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "reprise: --cpuprofile: "+err.Error())
			return exitHostError
		}
		defer stop()
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
	httpLn, err := net.Listen("tcp", *addr)
	if err != nil {
		_ = app.Shutdown(context.Background())
		fmt.Fprintf(stderr, "reprise: listen for HTTP on %s (set --addr or REPRISE_ADDR to use another address): %v\n", *addr, err)
		return exitHostError
	}
	// The keys exist once the App has started: the configured ones, else those it generated and
	// keeps in the store.
	grpcSrv, err := sidecar.Listen(ctx, app, sidecar.Options{Addr: *grpcAddr, RequireKeys: keysOnLoopback, TLS: tlsConfig, LeaseDuration: *lease,
		Grace: grpcGrace, Logger: logger, Getenv: getenv})
	if err != nil {
		httpLn.Close()
		_ = app.Shutdown(context.Background())
		fmt.Fprintln(stderr, "reprise: "+err.Error())
		return exitHostError
	}
	// App.Serve shuts the App down when its context ends; that comes after gRPC has stopped,
	// so that no RPC runs on a closed store.
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- app.Serve(httpCtx, httpLn) }()

	fmt.Fprintf(stdout, "reprise serve: task hub %q on %s\n", *hub, desc)
	fmt.Fprintf(stdout, "%s%s\n", serveGRPCLine, grpcSrv.Addr())
	fmt.Fprintf(stdout, "gRPC access: %s\n", grpcSrv.Access())
	fmt.Fprintf(stdout, "HTTP (management API, dashboard): http://%s\n", httpLn.Addr())

	var failure error
	select {
	case <-ctx.Done():
	case err := <-grpcSrv.Done():
		failure = fmt.Errorf("gRPC server: %w", err)
	case err := <-httpDone:
		failure = fmt.Errorf("HTTP server: %w", err)
		if err == nil {
			failure = errors.New("HTTP server stopped")
		}
		httpDone <- nil
	}
	_ = grpcSrv.Shutdown(context.Background())
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

// startCPUProfile starts a CPU profile into the file path; stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
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
