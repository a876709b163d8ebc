package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/reprise-dev/reprise/internal/pgtest"
	"github.com/reprise-dev/reprise/store"
	"github.com/reprise-dev/reprise/store/storetest"
)

// openStore opens a store on dsn and closes it when the test ends.
func openStore(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 4 // many stores run at once in the tests; the server allows 100 connections
	}
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomHub() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "hub-" + hex.EncodeToString(b[:])
}

func TestConformance(t *testing.T) {
	dsn := pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, dsn, Options{Hub: randomHub()})
	}, storetest.Options{
		OpenHubs: func(t *testing.T, hubs []string) []store.Store {
			fresh := pgtest.DSN(t)
			var out []store.Store
			for _, h := range hubs {
				out = append(out, openStore(t, fresh, Options{Hub: h}))
			}
			return out
		},
	})
}
