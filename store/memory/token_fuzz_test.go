package memory

import (
	"errors"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

// FuzzToken: any token a client sends is parsed without a panic, and either refused with
// store.ErrInvalidToken or read as a position that makes the same position again; a token the
// store made of an ID it accepts reads back as that position.
func FuzzToken(f *testing.F) {
	f.Add(makeToken(1893553445000000000, "order-1"), int64(1893553445000000000), "order-1")
	f.Add(makeToken(-5, "x:y"), int64(-5), "x:y")
	f.Add("", int64(0), "")
	f.Add("!!", int64(-1), "\xff")
	f.Fuzz(func(t *testing.T, tok string, created int64, id string) {
		if c, i, err := parseToken(tok); err != nil {
			if !errors.Is(err, store.ErrInvalidToken) {
				t.Fatalf("parseToken(%q): %v, not ErrInvalidToken", tok, err)
			}
		} else if c2, i2, err := parseToken(makeToken(c, i)); err != nil || c2 != c || i2 != i {
			t.Fatalf("token %q reads as (%d, %q), whose token reads as (%d, %q, %v)", tok, c, i, c2, i2, err)
		}
		if store.CheckID(id) != nil {
			return
		}
		if c, i, err := parseToken(makeToken(created, id)); err != nil || c != created || i != id {
			t.Fatalf("makeToken(%d, %q) reads back as (%d, %q, %v)", created, id, c, i, err)
		}
	})
}
