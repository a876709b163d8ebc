// Package pgtest gives tests a fresh, empty PostgreSQL database of their own.
//
// The server is the one named by REPRISE_TEST_POSTGRES_DSN, or, when that is unset, a local one
// at postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. When the server cannot be
// reached, tests skip, unless REPRISE_TEST_POSTGRES_DSN was set: then they fail, because a CI
// that asks for PostgreSQL must not pass by skipping.
//
// Each DSN call creates a database named reprise_test_<random> and drops it when the test ends,
// so tests (and the processes they start) can run in parallel without seeing each other's data.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable that points tests at a PostgreSQL server.
const EnvDSN = "REPRISE_TEST_POSTGRES_DSN"

// DefaultDSN is the server tried when EnvDSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// reachable caches the first reachability check of each base DSN: a server that is down stays
// down for the length of a test binary, and each check may wait for a connect timeout.
var (
	reachMu   sync.Mutex
	reachable = map[string]error{}
)

// base returns the server DSN and whether it was set explicitly.
func base() (string, bool) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, true
	}
	return DefaultDSN, false
}

// connect opens an administrative connection to the base DSN.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvDSN, err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func where(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// check reports whether the server answers, once per DSN.
func check(dsn string) error {
	reachMu.Lock()
	defer reachMu.Unlock()
	if err, ok := reachable[dsn]; ok {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	reachable[dsn] = err
	return err
}

// Available reports whether the test server can be reached. Unlike DSN it never skips or fails.
func Available() bool {
	dsn, _ := base()
	return check(dsn) == nil
}

// Require skips the test when the server cannot be reached, or fails it when EnvDSN was set
// explicitly. It returns the server's base DSN (not a fresh database: see DSN).
func Require(t testing.TB) string {
	t.Helper()
	dsn, explicit := base()
	if !require(t, dsn, explicit, check(dsn)) {
		return "" // not reached: t skipped or failed
	}
	return dsn
}

// require skips or fails t for the connection error err and reports whether the test may go on.
func require(t testing.TB, dsn string, explicit bool, err error) bool {
	t.Helper()
	switch {
	case err == nil:
		return true
	case explicit:
		t.Fatalf("PostgreSQL is not reachable at %s (%s is set, so this is a failure): %v", where(dsn), EnvDSN, err)
	default:
		t.Skipf("PostgreSQL is not reachable at %s; set %s to a server's DSN to run this test (%v)", where(dsn), EnvDSN, err)
	}
	return false
}

// DSN creates a fresh, empty database for the test, drops it (closing any connection still open
// on it) when the test ends, and returns its DSN. See the package doc for skipping.
func DSN(t testing.TB) string {
	t.Helper()
	baseDSN := Require(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "reprise_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connect(ctx, baseDSN)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", where(baseDSN), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v (the user needs the CREATEDB privilege)", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := connect(ctx, baseDSN)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := WithDatabase(baseDSN, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// WithDatabase returns dsn pointed at database name, in whichever form dsn is written (a URL or
// key=value pairs).
func WithDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In key=value form the last setting of a key wins.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}
