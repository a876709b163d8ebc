package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestAllNamesExcept(t *testing.T) {
	for _, tc := range []struct {
		names    Names
		excluded []string
		except   bool
	}{
		{nil, nil, false},
		{Names{}, nil, false},
		{Names{"a", "b"}, nil, false},
		{AllNamesExcept(), []string{}, true},
		{AllNamesExcept("a", "B"), []string{"a", "B"}, true},
	} {
		excluded, ok := tc.names.Except()
		if ok != tc.except || !slices.Equal(excluded, tc.excluded) {
			t.Errorf("%q.Except() = %q, %v; want %q, %v", tc.names, excluded, ok, tc.excluded, tc.except)
		}
		if err := tc.names.Check(); err != nil {
			t.Errorf("%q.Check() = %v, want nil", tc.names, err)
		}
	}
	if all := AllNamesExcept(); len(all) == 0 {
		t.Fatal("AllNamesExcept() is empty: it would claim nothing, as an empty list does")
	}
	// The mark is no name a store takes, so no list of valid names can be mistaken for it.
	if err := CheckText("name", AllNamesExcept()[0], MaxKeyBytes); err == nil {
		t.Fatal("CheckText accepts the mark of AllNamesExcept as a name")
	}
	given := []string{"a", "b"}
	all := AllNamesExcept(given...)
	all[1] = "changed"
	if given[0] != "a" {
		t.Fatal("AllNamesExcept shares its argument's array")
	}
}

func TestNamesCheckRefusesMisplacedMark(t *testing.T) {
	mark := AllNamesExcept()[0]
	for _, n := range []Names{
		{"a", mark},
		append(AllNamesExcept("a"), mark),
		{mark, mark},
		AllNamesExcept("ok", "bad\xff"),
		AllNamesExcept("bad\x00"),
		AllNamesExcept(strings.Repeat("x", MaxKeyBytes+1)),
	} {
		if err := n.Check(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q.Check() = %v, want ErrInvalidArgument", n, err)
		}
	}
}
