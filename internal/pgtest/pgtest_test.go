package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/other?sslmode=disable"},
		{"postgresql://h/", "postgresql://h/other"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=other"},
	} {
		got, err := WithDatabase(c.in, "other")
		if err != nil || got != c.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "other" {
			t.Errorf("%q parses to database %q (%v), want other", got, cfg.Database, err)
		}
	}
}

// recorder is a testing.TB that records Skipf and Fatalf instead of stopping.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestUnreachableSkipsOrFails(t *testing.T) {
	down := errors.New("connection refused")
	dsn := "postgres://u@127.0.0.1:1/db"

	r := &recorder{}
	if require(r, dsn, false, down) || r.failed != "" || !strings.Contains(r.skipped, "not reachable at 127.0.0.1:1") ||
		!strings.Contains(r.skipped, EnvDSN) {
		t.Fatalf("unreachable default server: skipped %q, failed %q; want a skip naming the address and %s", r.skipped, r.failed, EnvDSN)
	}
	r = &recorder{}
	if require(r, dsn, true, down) || r.skipped != "" || !strings.Contains(r.failed, "not reachable at 127.0.0.1:1") {
		t.Fatalf("unreachable server set in %s: skipped %q, failed %q; want a failure", EnvDSN, r.skipped, r.failed)
	}
	r = &recorder{}
	if !require(r, dsn, true, nil) || r.skipped != "" || r.failed != "" {
		t.Fatal("a reachable server skipped or failed the test")
	}
}

func TestDSNIsFreshAndDropped(t *testing.T) {
	base := Require(t)
	var name string
	t.Run("fresh", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var tables int
		if err := conn.QueryRow(t.Context(), `SELECT current_database(),
			(SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))`).Scan(&name, &tables); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "reprise_test_") || tables != 0 {
			t.Fatalf("database %q has %d tables, want a fresh reprise_test_ database", name, tables)
		}
	})
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s survived its test", name)
	}
}
