package httpapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/store"
)

// FuzzQuery drives the query parsing that FuzzRoute reaches through the handler directly, with
// the invariants of each accessor: names are case-insensitive and never empty, values are
// never empty but version's, what
// url.QueryEscape escaped is unescaped back, and every accessor either refuses a value with a
// *paramError or returns one in its range.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"showHistory=true&showHistoryOutput=True&showInput=false",
		"top=2&runtimeStatus=Running,Completed&runtimeStatus=3&createdTimeFrom=2024-01-01",
		"createdTimeTo=2024-01-02T15:04:05.123+02:00&timeout=1.5&pollingInterval=0",
		"createdTimeFrom=2024-01-02 15:04:05 02:00&top=-1&timeout=NaN",
		"reason=%zz;+x&reason=%41%4&=novalue&noname=&&",
		"top=99999999999999999999&timeout=1e308&runtimeStatus=,,bogus",
		"SHOWINPUT=tRuE&instanceIdPrefix=%FF%00",
		"version=&Version=1.0&VERSION=1.0,2&version=%FF",
	} {
		f.Add(s, "free text & more = 100%")
	}
	f.Fuzz(func(t *testing.T, raw, text string) {
		q := parseQuery(raw)
		for k, vs := range q {
			if k == "" || k != strings.ToLower(k) || len(vs) == 0 {
				t.Fatalf("key %q with values %q", k, vs)
			}
			for _, v := range vs {
				if v == "" && !keepsEmpty(k) {
					t.Fatalf("empty value kept for %q", k)
				}
			}
		}
		if got := unescapeQuery(url.QueryEscape(text)); got != text {
			t.Fatalf("unescapeQuery(QueryEscape(%q)) = %q", text, got)
		}
		check := func(name string, err error) {
			t.Helper()
			if _, ok := err.(*paramError); err != nil && !ok {
				t.Fatalf("%s: %v is not a *paramError", name, err)
			}
		}
		_, err := q.boolean("showHistory", false)
		check("boolean", err)
		if tm, ok, err := q.time("createdTimeFrom"); err != nil || ok {
			check("time", err)
			if ok && tm.Location().String() != "UTC" {
				t.Fatalf("time %v is not UTC", tm)
			}
		}
		if d, ok, err := q.seconds("timeout"); err != nil || ok {
			check("seconds", err)
			if d < 0 {
				t.Fatalf("seconds %v < 0", d)
			}
		}
		n, err := q.integer("top", 100, 1, 1000)
		check("integer", err)
		if err == nil && (n < 1 || n > 1000) {
			t.Fatalf("integer %d outside [1, 1000]", n)
		}
		vs, err := q.versions("version")
		check("versions", err)
		if err == nil && (len(vs) > store.MaxQueryVersions || len(vs) != len(q["version"])) {
			t.Fatalf("versions %q from %q", vs, q["version"])
		}
		check("single", q.single("version"))
		sts, err := q.statuses("runtimeStatus")
		check("statuses", err)
		for _, s := range sts {
			if s < store.StatusRunning || s > store.StatusSuspended {
				t.Fatalf("status %d outside the known ones", s)
			}
		}
	})
}
