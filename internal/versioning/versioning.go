// Package versioning compares orchestration versions and decides whether a host runs an
// instance of a version, as Durable Functions' orchestration versioning does (see
// docs/versioning.md and decision 0019).
package versioning

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf16"
)

// Compare orders two orchestration versions as .NET's Durable Task worker does: an empty version
// is less than any other (and equal to another empty one); two versions that both parse as a
// System.Version (two to four dot-separated decimal components, each from 0 to 2^31-1) compare
// numerically, component by component, with a missing component counting as -1 (so "1.0" <
// "1.0.0", and "1.02" = "1.2"); any other pair compares as case-insensitive ordinal strings (so
// "10" < "9": one component is no System.Version). It returns -1, 0 or +1.
func Compare(a, b string) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	if va, ok := parse(a); ok {
		if vb, ok := parse(b); ok {
			for i := range va {
				if va[i] != vb[i] {
					if va[i] < vb[i] {
						return -1
					}
					return 1
				}
			}
			return 0
		}
	}
	return compareFold(a, b)
}

// parse parses a System.Version as .NET's Version.TryParse does: 2 to 4 dot-separated
// components, each an Int32 as NumberStyles.Integer reads it (white space around it, a leading
// sign) that is not negative. Missing components are -1.
func parse(s string) ([4]int64, bool) {
	v := [4]int64{-1, -1, -1, -1}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return v, false
	}
	for i, p := range parts {
		n, ok := parseComponent(p)
		if !ok {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// parseComponent parses one component: .NET white space (U+0009 to U+000D, U+0020) around an
// optional '+' or '-' and at least one ASCII digit, with a value from 0 to 2^31-1 ("-0" is 0).
func parseComponent(p string) (int64, bool) {
	isWhite := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	i, j := 0, len(p)
	for i < j && isWhite(p[i]) {
		i++
	}
	for j > i && isWhite(p[j-1]) {
		j--
	}
	neg := false
	if i < j && (p[i] == '+' || p[i] == '-') {
		neg = p[i] == '-'
		i++
	}
	if i == j {
		return 0, false
	}
	var n int64
	for ; i < j; i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > math.MaxInt32+1 { // stop early; the bound is checked below
			return 0, false
		}
	}
	if neg {
		return 0, n == 0
	}
	return n, n <= math.MaxInt32
}

// compareFold compares as .NET's StringComparison.OrdinalIgnoreCase does: the UTF-16 code units
// of the strings upper-cased (simple case mapping), in order.
func compareFold(a, b string) int {
	ua, ub := upper16(a), upper16(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			if ua[i] < ub[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(ua) < len(ub):
		return -1
	case len(ua) > len(ub):
		return 1
	}
	return 0
}

func upper16(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		out = utf16.AppendRune(out, unicode.ToUpper(r))
	}
	return out
}

// Match is a version match strategy: which instance versions a host with a version runs.
type Match int

// Match strategies, with the names of host.json's versionMatchStrategy.
const (
	// CurrentOrOlder runs instances of the host's version or older (an empty version is older):
	// the default.
	CurrentOrOlder Match = iota
	// None runs every instance, whatever its version.
	None
	// Strict runs only instances of exactly the host's version.
	Strict
)

// Failure is a version failure strategy: what a host does with an instance it does not run.
type Failure int

// Failure strategies, with the names of host.json's versionFailureStrategy.
const (
	// Reject leaves the instance for a host that runs its version: the default.
	Reject Failure = iota
	// Fail fails the instance with a VersionMismatch failure.
	Fail
)

var (
	matchNames   = [...]string{CurrentOrOlder: "CurrentOrOlder", None: "None", Strict: "Strict"}
	failureNames = [...]string{Reject: "Reject", Fail: "Fail"}
)

func (m Match) String() string {
	if m >= 0 && int(m) < len(matchNames) {
		return matchNames[m]
	}
	return fmt.Sprintf("Match(%d)", int(m))
}

func (f Failure) String() string {
	if f >= 0 && int(f) < len(failureNames) {
		return failureNames[f]
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// ParseMatch parses a match strategy name, case-insensitively.
func ParseMatch(s string) (Match, error) {
	for i, n := range matchNames {
		if strings.EqualFold(n, s) {
			return Match(i), nil
		}
	}
	return 0, fmt.Errorf("unknown version match strategy %q: want None, Strict or CurrentOrOlder", s)
}

// ParseFailure parses a failure strategy name, case-insensitively.
func ParseFailure(s string) (Failure, error) {
	for i, n := range failureNames {
		if strings.EqualFold(n, s) {
			return Failure(i), nil
		}
	}
	return 0, fmt.Errorf("unknown version failure strategy %q: want Reject or Fail", s)
}

// MismatchType is the error type of the failure of an instance failed for its version.
const MismatchType = "VersionMismatch"

// Policy is what a host does about versions. The zero Policy runs everything.
type Policy struct {
	Version string // the host's version (its default version); "" runs everything
	Match   Match
	Failure Failure
}

// Active reports whether the policy checks versions at all.
func (p Policy) Active() bool { return p.Version != "" && p.Match != None }

// Check reports whether the host runs an instance of version v; when it does not, the error
// says why, in the words of Durable Functions' worker ("The orchestration version '2.0' is
// greater than the worker version '1.0'.").
func (p Policy) Check(v string) error {
	if !p.Active() {
		return nil
	}
	switch p.Match {
	case Strict:
		if Compare(v, p.Version) != 0 {
			return &MismatchError{Instance: v, Worker: p.Version, Match: p.Match}
		}
	default: // CurrentOrOlder
		if Compare(v, p.Version) > 0 {
			return &MismatchError{Instance: v, Worker: p.Version, Match: p.Match}
		}
	}
	return nil
}

// MismatchError reports an instance version that a host's policy does not run.
type MismatchError struct {
	Instance, Worker string
	Match            Match
}

func (e *MismatchError) Error() string {
	if e.Match == Strict {
		return fmt.Sprintf("The orchestration version '%s' does not match the worker version '%s'.", e.Instance, e.Worker)
	}
	return fmt.Sprintf("The orchestration version '%s' is greater than the worker version '%s'.", e.Instance, e.Worker)
}
