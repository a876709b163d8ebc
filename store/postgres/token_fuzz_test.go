package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// FuzzToken: a continuation token from a client is parsed without a panic (and without a
// database), refused with store.ErrInvalidToken or read as a position that makes the same
// position again; a token the store made is read back as the position it was made from, at the
// database's resolution (microseconds).
func FuzzToken(f *testing.F) {
	f.Add(makeToken(time.UnixMicro(1767322245000000), "order-17"), int64(1767322245000000), "order-17")
	f.Add(makeToken(time.UnixMicro(-1), "a:b:c"), int64(-1), "a:b:c")
	f.Add("", int64(0), "")
	f.Add("garbage!", int64(9223372036854775807), "\xff\x00")
	f.Add("MTIzOg", int64(-9223372036854775808), "@e@k")
	f.Fuzz(func(t *testing.T, tok string, us int64, id string) {
		c, i, err := parseToken(tok)
		if err != nil {
			if !errors.Is(err, store.ErrInvalidToken) {
				t.Fatalf("parseToken(%q): %v, not ErrInvalidToken", tok, err)
			}
		} else if c2, i2, err := parseToken(makeToken(c, i)); err != nil || !c2.Equal(c) || i2 != i {
			t.Fatalf("token %q reads as (%s, %q), which makes a token read as (%s, %q, %v)", tok, c, i, c2, i2, err)
		}
		created := time.UnixMicro(us)
		if store.CheckID(id) != nil {
			return // the store never makes a token of an ID it refuses
		}
		if c, i, err := parseToken(makeToken(created, id)); err != nil || !c.Equal(created) || i != id {
			t.Fatalf("makeToken(%s, %q) reads back as (%s, %q, %v)", created, id, c, i, err)
		}
	})
}
