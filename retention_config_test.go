package reprise

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprise-dev/reprise/store"
)

const testDay = 24 * time.Hour

func TestParseTimeSpan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"7.00:00:00", 7 * testDay},
		{"30.12:30:15", 30*testDay + 12*time.Hour + 30*time.Minute + 15*time.Second},
		{"00:01:00", time.Minute},
		{"12:00", 12 * time.Hour},
		{"00:00:00.1", 100 * time.Millisecond},
		{"00:00:01.0000001", time.Second + 100*time.Nanosecond},
		{"7", 7 * testDay},
		{" 1.00:00:00 ", testDay},
		{"168h", 168 * time.Hour},
		{"90s", 90 * time.Second},
	} {
		got, err := parseTimeSpan(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if tc.want >= time.Second && !strings.ContainsAny(tc.in, "hs") {
			if back, _ := parseTimeSpan(formatTimeSpan(got)); back != got {
				t.Errorf("formatTimeSpan(%v) = %q, which parses as %v", got, formatTimeSpan(got), back)
			}
		}
	}
	for _, bad := range []string{"", "-1.00:00:00", "24:00:00", "00:60:00", "00:00:60", "1.2.3", "a.00:00:00", "00:00:00.12345678", "1:2:3:4", "week", "00:00:00."} {
		if d, err := parseTimeSpan(bad); err == nil {
			t.Errorf("parseTimeSpan(%q) = %v, want an error", bad, d)
		}
	}
	if formatTimeSpan(7*testDay+90*time.Minute) != "7.01:30:00" {
		t.Errorf("formatTimeSpan = %q", formatTimeSpan(7*testDay+90*time.Minute))
	}
}

// TestRetentionConfiguration: each status's retention and each tuning setting is a setting of its
// own, decided by the option, else the environment, else host.json; "default" fills the statuses
// its source leaves open; "never" keeps a status; invalid values name the setting.
func TestRetentionConfiguration(t *testing.T) {
	type want struct {
		age   map[store.Status]time.Duration
		batch int
		from  map[string]string
	}
	hostJSON := `{"extensions":{"durableTask":{"retention":{"default":"30.00:00:00","completed":"7.00:00:00",
		"batchSize":50,"pauseBetweenBatches":"00:00:00.5","interval":"00:05:00"}}}}`
	cases := []struct {
		name     string
		opts     []Option
		env      map[string]string
		hostJSON string
		want     want
		ignored  string
		log      string
	}{
		{
			name: "off by default",
			want: want{age: map[store.Status]time.Duration{}, batch: 100,
				from: map[string]string{"retention.completed": fromDefault, setRetBatch: fromDefault}},
			log: "off (default)",
		},
		{
			name:     "host.json",
			hostJSON: hostJSON,
			want: want{age: map[store.Status]time.Duration{store.StatusCompleted: 7 * testDay, store.StatusFailed: 30 * testDay,
				store.StatusTerminated: 30 * testDay, store.StatusCanceled: 30 * testDay}, batch: 50,
				from: map[string]string{
					"retention.completed":  "host.json: extensions.durableTask.retention.completed",
					"retention.failed":     "host.json: extensions.durableTask.retention.default",
					setRetBatch:            "host.json: extensions.durableTask.retention.batchSize",
					setRetPause:            "host.json: extensions.durableTask.retention.pauseBetweenBatches",
					setRetInterval:         "host.json: extensions.durableTask.retention.interval",
					"retention.terminated": "host.json: extensions.durableTask.retention.default"}},
			log: "completed 7.00:00:00 (host.json: extensions.durableTask.retention.completed), failed 30.00:00:00",
		},
		{
			name:     "the environment before host.json, per status",
			hostJSON: hostJSON,
			env:      map[string]string{"REPRISE_RETENTION_FAILED": "90.00:00:00", "REPRISE_RETENTION_CANCELED": "never", "REPRISE_RETENTION_BATCH_SIZE": "7"},
			want: want{age: map[store.Status]time.Duration{store.StatusCompleted: 7 * testDay, store.StatusFailed: 90 * testDay,
				store.StatusTerminated: 30 * testDay, store.StatusCanceled: -1}, batch: 7,
				from: map[string]string{"retention.failed": "REPRISE_RETENTION_FAILED", "retention.canceled": "REPRISE_RETENTION_CANCELED",
					"retention.completed": "host.json: extensions.durableTask.retention.completed", setRetBatch: "REPRISE_RETENTION_BATCH_SIZE"}},
			log: "canceled kept (REPRISE_RETENTION_CANCELED)",
		},
		{
			name:     "the option decides what it sets; its Default fills its own zero statuses",
			opts:     []Option{WithRetention(Retention{Completed: time.Hour, Failed: -1, BatchSize: 3})},
			env:      map[string]string{"REPRISE_RETENTION_COMPLETED": "2.00:00:00", "REPRISE_RETENTION_DEFAULT": "3.00:00:00"},
			hostJSON: hostJSON,
			want: want{age: map[store.Status]time.Duration{store.StatusCompleted: time.Hour, store.StatusFailed: -1,
				store.StatusTerminated: 3 * testDay, store.StatusCanceled: 3 * testDay}, batch: 3,
				from: map[string]string{"retention.completed": fromOption, "retention.failed": fromOption,
					"retention.terminated": "REPRISE_RETENTION_DEFAULT", setRetBatch: fromOption,
					setRetPause: "host.json: extensions.durableTask.retention.pauseBetweenBatches"}},
			ignored: "REPRISE_RETENTION_COMPLETED|REPRISE_RETENTION_DEFAULT|host.json: extensions.durableTask.retention.completed|" +
				"host.json: extensions.durableTask.retention.default|host.json: extensions.durableTask.retention.batchSize",
			log: "completed 01:00:00 (option), failed kept (option), terminated 3.00:00:00 (REPRISE_RETENTION_DEFAULT)",
		},
		{
			name: "an option's Default decides every status",
			opts: []Option{WithRetention(Retention{Default: 2 * time.Hour, Failed: 5 * time.Hour})},
			env:  map[string]string{"REPRISE_RETENTION_TERMINATED": "1.00:00:00"},
			want: want{age: map[store.Status]time.Duration{store.StatusCompleted: 2 * time.Hour, store.StatusFailed: 5 * time.Hour,
				store.StatusTerminated: 2 * time.Hour, store.StatusCanceled: 2 * time.Hour}, batch: 100,
				from: map[string]string{"retention.terminated": fromOption, setRetBatch: fromDefault}},
			ignored: "REPRISE_RETENTION_TERMINATED",
			log:     "batches of 100 (default), pause 100ms (default), interval 1m0s (default)",
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
			short := func(s string) string { return strings.ReplaceAll(s, path, "host.json") }
			for _, s := range retentionStatuses {
				if got := c.retention.age[s]; got != tc.want.age[s] {
					t.Errorf("retention of %s = %v, want %v", s, got, tc.want.age[s])
				}
			}
			if c.retention.batch != tc.want.batch {
				t.Errorf("batch size = %d, want %d", c.retention.batch, tc.want.batch)
			}
			for setting, from := range tc.want.from {
				if got := short(c.src.from[setting]); got != from {
					t.Errorf("%s came from %q, want %q", setting, got, from)
				}
			}
			if got := short(strings.Join(c.src.ignored, "|")); got != tc.ignored {
				t.Errorf("ignored\n %q\nwant\n %q", got, tc.ignored)
			}
			if got := short(c.describeRetention()); !strings.Contains(got, tc.log) {
				t.Errorf("logged retention %q, want it to contain %q", got, tc.log)
			}
		})
	}
}

// TestRetentionInvalidSettings: a wrong value stops the configuration with an error naming it,
// used or not.
func TestRetentionInvalidSettings(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		hostJSON string
		opts     []Option
		want     string
	}{
		{env: map[string]string{"REPRISE_RETENTION_COMPLETED": "7 days"}, want: "REPRISE_RETENTION_COMPLETED"},
		{env: map[string]string{"REPRISE_RETENTION_DEFAULT": "-1h"}, want: "REPRISE_RETENTION_DEFAULT"},
		{env: map[string]string{"REPRISE_RETENTION_BATCH_SIZE": "0"}, want: "REPRISE_RETENTION_BATCH_SIZE"},
		{env: map[string]string{"REPRISE_RETENTION_INTERVAL": "never"}, want: "REPRISE_RETENTION_INTERVAL"},
		{env: map[string]string{"REPRISE_RETENTION_FAILED": "1s"}, opts: []Option{WithRetention(Retention{Failed: time.Hour})},
			want: ""}, // valid and overridden: no error
		{env: map[string]string{"REPRISE_RETENTION_FAILED": "x"}, opts: []Option{WithRetention(Retention{Failed: time.Hour})},
			want: "REPRISE_RETENTION_FAILED"}, // overridden, still checked
		{hostJSON: `{"extensions":{"durableTask":{"retention":{"failed":"00:00:00"}}}}`, want: "extensions.durableTask.retention.failed"},
		{hostJSON: `{"extensions":{"durableTask":{"retention":{"completed":7}}}}`, want: "extensions.durableTask.retention"},
		{hostJSON: `{"extensions":{"durableTask":{"retention":{"batchSize":-3}}}}`, want: "extensions.durableTask.retention.batchSize"},
		{hostJSON: `{"extensions":{"durableTask":{"retention":{"interval":"soon"}}}}`, want: "extensions.durableTask.retention.interval"},
	} {
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
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v %s: %v, want no error", tc.env, tc.hostJSON, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v %s: error %v, want one naming %s", tc.env, tc.hostJSON, err, tc.want)
		}
	}
}

// TestRetentionIsLogged: the configuration line says what retention does and where it came from.
func TestRetentionIsLogged(t *testing.T) {
	var logs bytes.Buffer
	env := map[string]string{"REPRISE_HOST_JSON": filepath.Join(t.TempDir(), "host.json"), "REPRISE_RETENTION_DEFAULT": "2.00:00:00"}
	if err := os.WriteFile(env["REPRISE_HOST_JSON"], []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	app := NewApp(WithSQLiteFile(filepath.Join(t.TempDir(), "r.db")), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		WithRetention(Retention{Completed: time.Hour}), func(c *config) { c.getenv = func(k string) string { return env[k] } })
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	running := app.retention != nil
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !running {
		t.Error("retention is configured but the App runs no purge loop")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "configuration") {
			got, _ := r["retention"].(string)
			want := "completed 01:00:00 (option), failed 2.00:00:00 (REPRISE_RETENTION_DEFAULT), terminated 2.00:00:00 (REPRISE_RETENTION_DEFAULT)"
			if !strings.HasPrefix(got, want) {
				t.Errorf("retention logged as %q, want it to start with %q", got, want)
			}
			return
		}
	}
	t.Fatalf("no configuration line in\n%s", logs.String())
}
