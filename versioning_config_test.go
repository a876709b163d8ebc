package reprise

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/internal/versioning"
)

// TestVersioningConfiguration: each versioning setting is filled in on its own, from the option,
// then REPRISE_*, then host.json, then the defaults (CurrentOrOlder, Reject, no version), and the
// log says where each came from.
func TestVersioningConfiguration(t *testing.T) {
	hostJSON := `{"extensions":{"durableTask":{"defaultVersion":"1.5","versionMatchStrategy":"strict","versionFailureStrategy":"Fail"}}}`
	cases := []struct {
		name     string
		opts     []Option
		env      map[string]string
		hostJSON string
		want     versioning.Policy
		from     map[string]string
		ignored  string
		log      string
	}{
		{
			name: "off by default",
			want: versioning.Policy{Match: versioning.CurrentOrOlder, Failure: versioning.Reject},
			from: map[string]string{setDefVersion: fromDefault, setVerMatch: fromDefault, setVerFail: fromDefault},
			log:  "off: no default version (default)",
		},
		{
			name:     "host.json",
			hostJSON: hostJSON,
			want:     versioning.Policy{Version: "1.5", Match: versioning.Strict, Failure: versioning.Fail},
			from: map[string]string{setDefVersion: "host.json: extensions.durableTask.defaultVersion",
				setVerMatch: "host.json: extensions.durableTask.versionMatchStrategy", setVerFail: "host.json: extensions.durableTask.versionFailureStrategy"},
			log: "defaultVersion 1.5 (host.json: extensions.durableTask.defaultVersion), versionMatchStrategy Strict (host.json: extensions.durableTask.versionMatchStrategy), versionFailureStrategy Fail (host.json",
		},
		{
			name:     "the environment before host.json, per setting",
			hostJSON: hostJSON,
			env:      map[string]string{"REPRISE_DEFAULT_VERSION": "2.0", "REPRISE_VERSION_FAILURE_STRATEGY": "reject"},
			want:     versioning.Policy{Version: "2.0", Match: versioning.Strict, Failure: versioning.Reject},
			from: map[string]string{setDefVersion: "REPRISE_DEFAULT_VERSION", setVerFail: "REPRISE_VERSION_FAILURE_STRATEGY",
				setVerMatch: "host.json: extensions.durableTask.versionMatchStrategy"},
			log: "defaultVersion 2.0 (REPRISE_DEFAULT_VERSION)",
		},
		{
			name:     "the option decides what it sets",
			opts:     []Option{WithVersioning(Versioning{DefaultVersion: "3.0", MatchStrategy: VersionMatchNone})},
			env:      map[string]string{"REPRISE_DEFAULT_VERSION": "2.0"},
			hostJSON: hostJSON,
			want:     versioning.Policy{Version: "3.0", Match: versioning.None, Failure: versioning.Fail},
			from: map[string]string{setDefVersion: fromOption, setVerMatch: fromOption,
				setVerFail: "host.json: extensions.durableTask.versionFailureStrategy"},
			ignored: "REPRISE_DEFAULT_VERSION|host.json: extensions.durableTask.defaultVersion|host.json: extensions.durableTask.versionMatchStrategy",
			log:     "defaultVersion 3.0 (option), versionMatchStrategy None (option)",
		},
		{
			name:     "an empty defaultVersion in host.json is none",
			hostJSON: `{"extensions":{"durableTask":{"defaultVersion":""}}}`,
			want:     versioning.Policy{Match: versioning.CurrentOrOlder, Failure: versioning.Reject},
			from:     map[string]string{setDefVersion: fromDefault},
			log:      "off",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			path := filepath.Join(t.TempDir(), "host.json")
			h := tc.hostJSON
			if h == "" {
				h = `{}`
			}
			if err := os.WriteFile(path, []byte(h), 0o600); err != nil {
				t.Fatal(err)
			}
			env["REPRISE_HOST_JSON"] = path
			var c config
			for _, o := range tc.opts {
				o(&c)
			}
			c.logger = slog.New(slog.DiscardHandler)
			if err := c.resolve(func(k string) string { return env[k] }); err != nil {
				t.Fatal(err)
			}
			if c.versioning != tc.want {
				t.Errorf("resolved %+v, want %+v", c.versioning, tc.want)
			}
			short := func(s string) string { return strings.ReplaceAll(s, path, "host.json") }
			for setting, from := range tc.from {
				if got := short(c.src.from[setting]); got != from {
					t.Errorf("%s came from %q, want %q", setting, got, from)
				}
			}
			if got := short(strings.Join(c.src.ignored, "|")); got != tc.ignored {
				t.Errorf("ignored\n %q\nwant\n %q", got, tc.ignored)
			}
			if got := short(c.describeVersioning()); !strings.Contains(got, tc.log) {
				t.Errorf("logged versioning %q, want it to contain %q", got, tc.log)
			}
		})
	}
}

// TestVersioningInvalidSettings: a wrong value stops the configuration with an error naming the
// setting, whether or not a setting before it decided.
func TestVersioningInvalidSettings(t *testing.T) {
	for _, tc := range []struct {
		name, hostJSON string
		env            map[string]string
		opts           []Option
		want           string
	}{
		{name: "env strategy", env: map[string]string{"REPRISE_VERSION_MATCH_STRATEGY": "Latest"}, want: "REPRISE_VERSION_MATCH_STRATEGY"},
		{name: "env failure, overridden", env: map[string]string{"REPRISE_VERSION_FAILURE_STRATEGY": "Ignore"},
			opts: []Option{WithVersioning(Versioning{FailureStrategy: VersionFailureFail})}, want: "REPRISE_VERSION_FAILURE_STRATEGY"},
		{name: "env version", env: map[string]string{"REPRISE_DEFAULT_VERSION": "1.\x00"}, want: "REPRISE_DEFAULT_VERSION"},
		{name: "host.json strategy", hostJSON: `{"extensions":{"durableTask":{"versionMatchStrategy":"Newest"}}}`, want: "extensions.durableTask.versionMatchStrategy"},
		{name: "host.json not a string", hostJSON: `{"extensions":{"durableTask":{"defaultVersion":2}}}`, want: "not valid JSON"},
		{name: "option strategy", opts: []Option{WithVersioning(Versioning{MatchStrategy: "Exact"})}, want: "WithVersioning MatchStrategy"},
		{name: "option failure", opts: []Option{WithVersioning(Versioning{FailureStrategy: "Retry"})}, want: "WithVersioning FailureStrategy"},
		{name: "option version", opts: []Option{WithVersioning(Versioning{DefaultVersion: strings.Repeat("9", 2049)})}, want: "WithVersioning DefaultVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			path := filepath.Join(t.TempDir(), "host.json")
			h := tc.hostJSON
			if h == "" {
				h = `{}`
			}
			if err := os.WriteFile(path, []byte(h), 0o600); err != nil {
				t.Fatal(err)
			}
			env["REPRISE_HOST_JSON"] = path
			var c config
			for _, o := range tc.opts {
				o(&c)
			}
			c.logger = slog.New(slog.DiscardHandler)
			err := c.resolve(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("resolve: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
