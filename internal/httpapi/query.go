package httpapi

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/store"
)

// query holds the query parameters of a request under lower-cased names, without empty values:
// the extension matches names case-insensitively and ignores empty values, and clients rely on it
// (Python sends showHistory=True, JavaScript appends flags only when they are set). version keeps
// its empty values: in a listing, version= selects the instances without a version.
type query map[string][]string

// keepsEmpty names the parameters whose empty values parseQuery keeps.
func keepsEmpty(key string) bool { return key == "version" }

// parseQuery parses a raw query string leniently. Unlike url.ParseQuery it keeps pairs with a ';'
// and keeps a malformed %-escape as written, so that a free-text reason never turns a command
// into an error; parameters that must be numbers, dates or booleans are checked later.
func parseQuery(raw string) query {
	q := query{}
	for pair := range strings.SplitSeq(raw, "&") {
		name, value, _ := strings.Cut(pair, "=")
		name, value = unescapeQuery(name), unescapeQuery(value)
		key := strings.ToLower(name)
		if name == "" || value == "" && !keepsEmpty(key) {
			continue
		}
		q[key] = append(q[key], value)
	}
	return q
}

// unescapeQuery decodes '+' and %XX escapes; a '%' not followed by two hex digits stays as is.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// paramError is a query parameter that could not be parsed; it is answered with 400.
type paramError struct {
	name, value, want string
}

func (e *paramError) Error() string {
	return fmt.Sprintf("invalid value %q for query parameter '%s': %s", e.value, e.name, e.want)
}

// first returns the first value of the parameter, "" when it is absent.
func (q query) first(name string) string {
	if vs := q[strings.ToLower(name)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// boolean parses a parameter as .NET's bool.TryParse does: "true" or "false", any case.
func (q query) boolean(name string, def bool) (bool, error) {
	v := q.first(name)
	if v == "" {
		return def, nil
	}
	switch t := strings.TrimSpace(v); {
	case strings.EqualFold(t, "true"):
		return true, nil
	case strings.EqualFold(t, "false"):
		return false, nil
	}
	return false, &paramError{name, v, "want true or false"}
}

// timeLayouts are the date forms accepted for createdTimeFrom and createdTimeTo: what the clients
// send (JavaScript's toISOString, Python's %Y-%m-%dT%H:%M:%S.%fZ) and the shorter ISO-8601 forms
// people type. A time without a zone is UTC.
var timeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// time parses a date parameter; ok is false when it is absent.
func (q query) time(name string) (t time.Time, ok bool, err error) {
	v := q.first(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	s := strings.TrimSpace(v)
	for _, candidate := range []string{s, strings.ReplaceAll(s, " ", "+")} {
		// An unencoded "+02:00" offset arrives as " 02:00"; the second candidate undoes that.
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, candidate); err == nil {
				return checkRange(name, v, t.UTC())
			}
		}
	}
	return time.Time{}, false, &paramError{name, v, "want an ISO-8601 date such as 2024-01-02T15:04:05Z"}
}

// checkRange refuses a date outside what the stores hold. 0001-01-01 is refused too, although
// it is Go's zero time: a bound given is a bound, never "no bound"; and a bound past 2262 used
// to overflow SQLite's nanoseconds and match everything.
func checkRange(name, v string, t time.Time) (time.Time, bool, error) {
	if t.Before(store.MinTime()) || t.After(store.MaxTime()) {
		return time.Time{}, false, &paramError{name, v, fmt.Sprintf("want a date from %s to %s",
			store.MinTime().Format(time.DateOnly), store.MaxTime().Format(time.DateOnly))}
	}
	return t, true, nil
}

// maxSeconds keeps a seconds parameter within what a time.Duration holds.
const maxSeconds = float64(math.MaxInt64/int64(time.Second)) - 1

// seconds parses a parameter given in seconds (a decimal number, as .NET's double); ok is false
// when it is absent.
func (q query) seconds(name string) (d time.Duration, ok bool, err error) {
	v := q.first(name)
	if v == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, false, &paramError{name, v, "want a number of seconds, 0 or more"}
	}
	return time.Duration(f * float64(time.Second)), true, nil
}

// integer parses an integer parameter within [lo, hi].
func (q query) integer(name string, def, lo, hi int) (int, error) {
	v := q.first(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, &paramError{name, v, fmt.Sprintf("want a whole number from %d to %d", lo, hi)}
	}
	return n, nil
}

// newestFirst parses order, a parameter of Reprise's own (the extension has no order): "oldest",
// the default, lists by creation time as the extension's clients expect; "newest" reverses it,
// for people looking for what they just started.
func (q query) newestFirst(name string) (bool, error) {
	switch v := q.first(name); strings.ToLower(strings.TrimSpace(v)) {
	case "", "oldest":
		return false, nil
	case "newest":
		return true, nil
	default:
		return false, &paramError{name, v, "want newest or oldest"}
	}
}

// single refuses a parameter given more than once with different values, where only one can
// apply (the version of a start): picking one would be a guess.
func (q query) single(name string) error {
	vs := q[strings.ToLower(name)]
	for _, v := range vs[min(1, len(vs)):] {
		if v != vs[0] {
			return &paramError{name, v, fmt.Sprintf("the parameter is also given as %q; give it once", vs[0])}
		}
	}
	return nil
}

// versions parses version, a filter of Reprise's own (the extension has no version filter):
// each value, repeated for several, is a whole version, matched exactly; an empty value selects
// the instances without a version. Commas are not separators: a version may hold one.
func (q query) versions(name string) ([]string, error) {
	vs := q[strings.ToLower(name)]
	if len(vs) > store.MaxQueryVersions {
		return nil, &paramError{name, vs[store.MaxQueryVersions], fmt.Sprintf("at most %d versions may be given; this is one more", store.MaxQueryVersions)}
	}
	return slices.Clone(vs), nil
}

// statuses parses runtimeStatus: comma-separated and/or repeated names (any case) or numbers.
// The extension drops names it does not know, which turns a typo into "all statuses"; an error
// naming the value is kinder.
func (q query) statuses(name string) ([]store.Status, error) {
	var out []store.Status
	for _, v := range q[strings.ToLower(name)] {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			s, err := parseStatus(part)
			if err != nil {
				return nil, &paramError{name, part, "want runtime status names such as Running, Completed, Failed, Terminated, Pending, Suspended"}
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func parseStatus(s string) (store.Status, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < int(store.StatusRunning) || n > int(store.StatusSuspended) {
			return 0, fmt.Errorf("unknown runtime status number %d", n)
		}
		return store.Status(n), nil
	}
	return store.ParseStatus(s)
}
