package versioning

import (
	"errors"
	"strings"
	"testing"
)

// TestCompare: the table of System.Version and string comparisons that decides which host runs
// which instance, with the cases where .NET and the JavaScript SDK disagree (.NET's answer).
func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "0.0", -1},
		{"", "anything", -1},
		{"1.0", "", 1},
		{"1.0", "1.0", 0},
		{"1.0", "2.0", -1},
		{"2.0", "1.9.9.9", 1},
		{"1.10", "1.9", 1},   // numeric, not "1.1" < "1.9"
		{"1.0", "1.0.0", -1}, // a missing component is -1 (JS says equal)
		{"1.0.0", "1.0.0.0", -1},
		{"1.2.3.4", "1.2.3.4", 0},
		{"01.002", "1.2", 0}, // leading zeros are numbers
		{" 1.2 ", "1.2", 0},  // Int32 parsing allows white space around components
		{"+1.2", "1.2", 0},   // and a sign
		{"-0.1", "0.1", 0},   // "-0" is 0
		{"-1.0", "0.1", -1},  // a negative component is no System.Version: strings, "-" < "0"
		{"9", "10", 1},       // one component is no System.Version: strings (JS says 9 < 10)
		{"10", "9", -1},
		{"1.2.3.4.5", "1.2.3.4", 1}, // five components: strings
		{"2147483647.0", "2147483646.0", 1},
		{"2147483648.0", "3.0", -1}, // beyond Int32: strings, "2" < "3"
		{"1.0-beta", "1.0-BETA", 0}, // not versions: case-insensitive
		{"1.0-alpha", "1.0-beta", -1},
		{"1.0", "1.0-beta", -1}, // one is not a version: strings, a prefix sorts first
		{"v2", "V1", 1},
		{"release_a", "release-a", 1}, // ordinal after upper-casing: '_' (0x5F) > '-' (0x2D)
		{"a", "B", -1},                // case-insensitive: "A" < "B" although 'a' > 'B'
		{"\uffff", "\U00010000", 1},   // UTF-16 code units: U+10000 is D800 DC00, below FFFF
		{"1..0", "1.0", -1},           // an empty component is no version: "1." < "1.0"
		{"1.0.", "1.0", 1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d (reversed)", tc.b, tc.a, got, -tc.want)
		}
	}
}

// FuzzCompare: whatever the text, the comparison is an ordering of each pair (reflexive,
// antisymmetric), the empty version is the least, case does not matter outside version numbers,
// and it never panics.
func FuzzCompare(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0.0"}, {"9", "10"}, {"1.0-beta", "1.0-BETA"}, {"", "x"}, {" +1.2", "1.2"},
		{"2147483648.0", "1.0"}, {"\xff", "1.0"}, {"ǅ.1", "ǆ.1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) = %d", a, Compare(a, a))
		}
		if a != "" && Compare("", a) != -1 {
			t.Fatalf("the empty version is not less than %q", a)
		}
		if _, ok := parse(a); !ok && strings.ToValidUTF8(a, "") == a {
			if Compare(a, strings.ToLower(a)) != 0 && Compare(strings.ToUpper(a), strings.ToUpper(strings.ToLower(a))) == 0 {
				t.Fatalf("Compare(%q, %q) = %d; case must not matter", a, strings.ToLower(a), Compare(a, strings.ToLower(a)))
			}
		}
		if va, ok := parse(a); ok {
			for _, n := range va {
				if n < -1 || n > 1<<31-1 {
					t.Fatalf("parse(%q) = %v: a component out of range", a, va)
				}
			}
		}
	})
}

// TestPolicy: which versions a host runs under each strategy, and the failure message.
func TestPolicy(t *testing.T) {
	host := func(m Match) Policy { return Policy{Version: "1.0", Match: m} }
	for _, tc := range []struct {
		p    Policy
		v    string
		runs bool
	}{
		{Policy{}, "9.9", true},              // no host version: everything
		{Policy{Match: Strict}, "9.9", true}, // still no host version
		{host(None), "9.9", true},
		{host(CurrentOrOlder), "1.0", true},
		{host(CurrentOrOlder), "0.9", true},
		{host(CurrentOrOlder), "", true}, // created without a version: older
		{host(CurrentOrOlder), "1.0.0", false},
		{host(CurrentOrOlder), "2.0", false},
		{host(Strict), "1.0", true},
		{host(Strict), "0.9", false},
		{host(Strict), "", false},
		{host(Strict), "1.0.0", false}, // System.Version: 1.0 is not 1.0.0
		{Policy{Version: "beta", Match: Strict}, "BETA", true},
	} {
		err := tc.p.Check(tc.v)
		if (err == nil) != tc.runs {
			t.Errorf("%+v runs %q: %v, want %v", tc.p, tc.v, err == nil, tc.runs)
		}
		var me *MismatchError
		if err != nil && !errors.As(err, &me) {
			t.Errorf("%+v, %q: error %T, want *MismatchError", tc.p, tc.v, err)
		}
	}
	if got, want := host(CurrentOrOlder).Check("2.0").Error(), "The orchestration version '2.0' is greater than the worker version '1.0'."; got != want {
		t.Errorf("CurrentOrOlder message %q, want %q", got, want)
	}
	if got, want := host(Strict).Check("").Error(), "The orchestration version '' does not match the worker version '1.0'."; got != want {
		t.Errorf("Strict message %q, want %q", got, want)
	}
}

// TestParseStrategies: names as host.json writes them, in any case; others refused.
func TestParseStrategies(t *testing.T) {
	for name, want := range map[string]Match{"None": None, "strict": Strict, "CURRENTORolder": CurrentOrOlder} {
		if got, err := ParseMatch(name); err != nil || got != want {
			t.Errorf("ParseMatch(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for name, want := range map[string]Failure{"Reject": Reject, "fail": Fail} {
		if got, err := ParseFailure(name); err != nil || got != want {
			t.Errorf("ParseFailure(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "Current", "Latest", "strict "} {
		if _, err := ParseMatch(bad); err == nil {
			t.Errorf("ParseMatch(%q) accepted", bad)
		}
	}
	if _, err := ParseFailure("Ignore"); err == nil || !strings.Contains(err.Error(), "Reject or Fail") {
		t.Errorf("ParseFailure(Ignore): %v", err)
	}
}
