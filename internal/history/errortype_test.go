package history

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorType(t *testing.T) {
	base := errors.New("boom")
	for _, c := range []struct {
		err  error
		want string
	}{
		{base, ""},
		{fmt.Errorf("no wrap"), ""},
		{fmt.Errorf("wrap: %w", base), ""},
		{fmt.Errorf("wrap two: %w %w", base, base), ""},
		{errors.Join(base, base), ""},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, "*fs.PathError"},
	} {
		if got := ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
