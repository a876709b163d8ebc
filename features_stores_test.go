package reprise_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store/memory"
	"github.com/reprise-dev/reprise/store/postgres"
)

// featureStore starts the Apps of the feature tests on one kind of store.
type featureStore struct {
	// options returns the store options of one test's App; each test gets a store (or a task hub)
	// of its own.
	options func(t *testing.T) []reprise.Option
}

// start is startApp on the feature store.
func (s featureStore) start(t *testing.T, defs []reprise.Definition, opts ...reprise.Option) *reprise.App {
	t.Helper()
	return startApp(t, defs, append(s.options(t), opts...)...)
}

// TestFeatures runs every feature test on SQLite, on PostgreSQL (skipped when the server is
// unreachable, failed in CI when REPRISE_TEST_POSTGRES_DSN is set) and on the in-memory store, in
// parallel: each test has a store or a hub of its own.
func TestFeatures(t *testing.T) {
	stores := []struct {
		name  string
		setup func(t *testing.T) featureStore
	}{
		{"sqlite", func(t *testing.T) featureStore {
			return featureStore{func(t *testing.T) []reprise.Option {
				return []reprise.Option{reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "test.db"))}
			}}
		}},
		{"postgres", func(t *testing.T) featureStore {
			dsn := pgtest.DSN(t) // one database for all; a hub per test
			return featureStore{func(t *testing.T) []reprise.Option {
				hub := "f_" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()[len("TestFeatures/postgres/"):])
				// A small pool: the tests run in parallel on one server that other tests share.
				st, err := postgres.Open(context.Background(), dsn, postgres.Options{Hub: hub, MaxConns: 4})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() }) // after the App's shutdown, registered later
				return []reprise.Option{reprise.WithStore(st)}
			}}
		}},
		{"memory", func(t *testing.T) featureStore {
			return featureStore{func(t *testing.T) []reprise.Option {
				st := memory.New(memory.Options{})
				t.Cleanup(func() { st.Close() }) // after the App's shutdown, registered later
				return []reprise.Option{reprise.WithStore(st)}
			}}
		}},
	}
	for _, kind := range stores {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			s := kind.setup(t)
			for _, f := range append(append(features, entityFeatures...), patchFeatures...) {
				t.Run(f.name, func(t *testing.T) {
					t.Parallel()
					f.test(t, s)
				})
			}
		})
	}
}
