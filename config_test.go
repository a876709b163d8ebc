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

	"github.com/reprise-dev/reprise/store/sqlite"
)

// TestConfigurationPrecedence: options win over the environment, which wins over host.json,
// which wins over the defaults; each fills in only what the ones before it left open, and the
// sources say where each setting came from and what an option overrode.
func TestConfigurationPrecedence(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "given.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const fullHostJSON = `{"extensions":{"durableTask":{"hubName":"JsonHub","maxConcurrentActivityFunctions":8,
		"maxConcurrentOrchestratorFunctions":9,"storageProvider":{"type":"sqlite","file":"json.db"}}}}`
	fullEnv := map[string]string{
		"REPRISE_STORE": "env.db", "REPRISE_HUB": "EnvHub", "REPRISE_ADDR": "127.0.0.1:9000",
		"REPRISE_MASTER_KEY": "env-master", "REPRISE_SYSTEM_KEY": "env-system", "REPRISE_HOST_KEYS": "env-host",
		"REPRISE_MANAGEMENT_AUTH": "anonymous", "REPRISE_MAX_CONCURRENT_ACTIVITIES": "5", "REPRISE_MAX_REQUEST_BODY": "1KiB",
	}
	type want struct {
		storePath, postgresDSN, hub, addr string
		givenStore                        bool
		master, system                    string
		hostKeys                          string
		anonymous                         bool
		maxAct, maxOrch                   int
		maxBody                           int64
		from                              map[string]string
		ignored                           []string
	}
	cases := []struct {
		name     string
		opts     []Option
		env      map[string]string
		hostJSON string
		want     want
	}{
		{
			name: "defaults",
			want: want{storePath: DefaultStorePath, hub: "default", addr: DefaultAddr, maxBody: DefaultMaxRequestBody,
				from: map[string]string{setStore: fromDefault, setHub: fromDefault, setAddr: fromDefault, setMgmtAuth: fromDefault}},
		},
		{
			name:     "host.json fills in",
			hostJSON: fullHostJSON,
			want: want{storePath: "json.db", hub: "JsonHub", addr: DefaultAddr, maxAct: 8, maxOrch: 9, maxBody: DefaultMaxRequestBody,
				from: map[string]string{setStore: "host.json: extensions.durableTask.storageProvider", setHub: "host.json: extensions.durableTask.hubName"}},
		},
		{
			name:     "the environment wins over host.json",
			env:      fullEnv,
			hostJSON: fullHostJSON,
			want: want{storePath: "env.db", hub: "EnvHub", addr: "127.0.0.1:9000", master: "env-master", system: "env-system",
				hostKeys: "env-host", anonymous: true, maxAct: 5, maxOrch: 9, maxBody: 1024,
				from: map[string]string{setStore: "REPRISE_STORE", setHub: "REPRISE_HUB", setMaster: "REPRISE_MASTER_KEY",
					setMgmtAuth: "REPRISE_MANAGEMENT_AUTH", setMaxOrch: "host.json: extensions.durableTask.maxConcurrentOrchestratorFunctions"}},
		},
		{
			name: "options win over both",
			opts: []Option{WithSQLiteFile("code.db"), WithHub("CodeHub"), WithAddr("127.0.0.1:8000"),
				WithKeys(Keys{Master: "code-master", Host: []string{"code-host"}}), WithAnonymousManagement(),
				WithMaxConcurrentActivities(3), WithMaxRequestBody(2048)},
			env:      fullEnv,
			hostJSON: fullHostJSON,
			want: want{storePath: "code.db", hub: "CodeHub", addr: "127.0.0.1:8000", master: "code-master", system: "env-system",
				hostKeys: "code-host", anonymous: true, maxAct: 3, maxOrch: 9, maxBody: 2048,
				from: map[string]string{setStore: fromOption, setHub: fromOption, setAddr: fromOption, setMaster: fromOption,
					setSystem: "REPRISE_SYSTEM_KEY", setHostKeys: fromOption, setMgmtAuth: fromOption, setMaxAct: fromOption},
				ignored: []string{"REPRISE_STORE", "REPRISE_HUB", "REPRISE_ADDR", "REPRISE_MASTER_KEY", "REPRISE_HOST_KEYS",
					"REPRISE_MANAGEMENT_AUTH", "REPRISE_MAX_REQUEST_BODY", "REPRISE_MAX_CONCURRENT_ACTIVITIES",
					"host.json: extensions.durableTask.hubName", "host.json: extensions.durableTask.maxConcurrentActivityFunctions",
					"host.json: extensions.durableTask.storageProvider"}},
		},
		{
			name: "a store given in code is used",
			opts: []Option{WithStore(st)},
			env:  map[string]string{"REPRISE_STORE": "postgres://elsewhere/db"},
			want: want{givenStore: true, hub: "default", addr: DefaultAddr, maxBody: DefaultMaxRequestBody,
				from: map[string]string{setStore: fromOption}, ignored: []string{"REPRISE_STORE"}},
		},
		{
			name:     "WithPostgres wins, and host.json's connection string is not even read",
			opts:     []Option{WithPostgres("postgres://code/db")},
			hostJSON: `{"extensions":{"durableTask":{"storageProvider":{"type":"postgres","connectionStringName":"UNSET_DSN"}}}}`,
			want: want{postgresDSN: "postgres://code/db", hub: "default", addr: DefaultAddr, maxBody: DefaultMaxRequestBody,
				from: map[string]string{setStore: fromOption}, ignored: []string{"host.json: extensions.durableTask.storageProvider"}},
		},
		{
			name: "the environment opens what the code left open",
			env:  map[string]string{"REPRISE_MANAGEMENT_AUTH": "anonymous", "REPRISE_STORE": "postgres://env/db"},
			want: want{postgresDSN: "postgres://env/db", hub: "default", addr: DefaultAddr, anonymous: true, maxBody: DefaultMaxRequestBody,
				from: map[string]string{setStore: "REPRISE_STORE", setMgmtAuth: "REPRISE_MANAGEMENT_AUTH"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			if tc.hostJSON != "" {
				path := filepath.Join(t.TempDir(), "host.json")
				if err := os.WriteFile(path, []byte(tc.hostJSON), 0o600); err != nil {
					t.Fatal(err)
				}
				env["REPRISE_HOST_JSON"] = path
			} else {
				env["REPRISE_HOST_JSON"] = filepath.Join(t.TempDir(), "none.json")
				if err := os.WriteFile(env["REPRISE_HOST_JSON"], []byte(`{}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var c config
			for _, o := range tc.opts {
				o(&c)
			}
			c.logger = slog.New(slog.DiscardHandler)
			if err := c.resolve(func(k string) string { return env[k] }); err != nil {
				t.Fatal(err)
			}
			w := tc.want
			got := want{storePath: c.storePath, postgresDSN: c.postgresDSN, hub: c.hub, addr: c.addr, givenStore: c.store != nil,
				master: c.keys.Master, system: c.keys.System, hostKeys: strings.Join(c.keys.Host, ","), anonymous: c.anonymousManagement,
				maxAct: c.maxAct, maxOrch: c.maxOrch, maxBody: c.maxBody}
			if got.storePath != w.storePath || got.postgresDSN != w.postgresDSN || got.hub != w.hub || got.addr != w.addr ||
				got.givenStore != w.givenStore || got.master != w.master || got.system != w.system || got.hostKeys != w.hostKeys ||
				got.anonymous != w.anonymous || got.maxAct != w.maxAct || got.maxOrch != w.maxOrch || got.maxBody != w.maxBody {
				t.Errorf("resolved\n %+v\nwant\n %+v", got, w)
			}
			short := func(s string) string { return strings.ReplaceAll(s, env["REPRISE_HOST_JSON"], "host.json") }
			for setting, from := range w.from {
				if short(c.src.from[setting]) != from {
					t.Errorf("%s came from %q, want %q", setting, c.src.from[setting], from)
				}
			}
			if short(strings.Join(c.src.ignored, "|")) != strings.Join(w.ignored, "|") {
				t.Errorf("ignored\n %q\nwant\n %q", c.src.ignored, w.ignored)
			}
		})
	}
}

// TestConfigurationIsLogged: Start logs one line saying where the settings came from, what an
// option overrode and how to print the generated keys, without the keys themselves.
func TestConfigurationIsLogged(t *testing.T) {
	var logs bytes.Buffer
	env := map[string]string{"REPRISE_STORE": filepath.Join(t.TempDir(), "env.db"), "REPRISE_HUB": "EnvHub",
		"REPRISE_HOST_JSON": filepath.Join(t.TempDir(), "missing.json")}
	if err := os.WriteFile(env["REPRISE_HOST_JSON"], []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	app := NewApp(WithSQLiteFile(filepath.Join(t.TempDir(), "code.db")), WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		func(c *config) { c.getenv = func(k string) string { return env[k] } })
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := app.keys
	if err := app.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "configuration") {
			rec, n = r, n+1
		}
	}
	if n != 1 {
		t.Fatalf("%d configuration records, want 1:\n%s", n, logs.String())
	}
	str := func(k string) string { s, _ := rec[k].(string); return s }
	if !strings.HasSuffix(str("store"), "code.db (option)") || str("hub") != "EnvHub (REPRISE_HUB)" ||
		str("masterKey") != fromGenerated || str("systemKey") != fromGenerated ||
		!strings.Contains(str("overriddenByOptions"), "REPRISE_STORE") || !strings.Contains(str("msg"), "reprise keys") {
		t.Errorf("configuration record %v", rec)
	}
	if strings.Contains(logs.String(), keys.system) {
		t.Error("the generated system key is in the log")
	}
}

// TestStoreGivenInCodeIsNamedInTheLog: a store passed with WithStore is named in the logs by what
// it is (its file), not by its Go type.
func TestStoreGivenInCodeIsNamedInTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "given.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app := NewApp(WithStore(st), func(c *config) { c.getenv = func(string) string { return "" } })
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer app.Shutdown(context.Background())
	if got, want := app.storeDescription(), "sqlite:"+path; got != want {
		t.Errorf("store named %q in the logs, want %q", got, want)
	}
}

// TestMetricsSettings: REPRISE_METRICS turns the metrics off (an option wins over it), a bad
// value names the variable, and REPRISE_METRICS_ADDR needs a port.
func TestMetricsSettings(t *testing.T) {
	resolve := func(env map[string]string, opts ...Option) (config, error) {
		var c config
		for _, o := range opts {
			o(&c)
		}
		err := c.resolve(func(k string) string { return env[k] })
		return c, err
	}
	if c, err := resolve(nil); err != nil || c.metricsOff || c.metricsAddr != "" {
		t.Errorf("default: off %v, addr %q, err %v; want on, no listener", c.metricsOff, c.metricsAddr, err)
	}
	if c, err := resolve(map[string]string{"REPRISE_METRICS": "OFF", "REPRISE_METRICS_ADDR": "127.0.0.1:9464"}); err != nil ||
		!c.metricsOff || c.metricsAddr != "127.0.0.1:9464" || c.src.from[setMetrics] != "REPRISE_METRICS" {
		t.Errorf("REPRISE_METRICS=OFF: off %v, addr %q, from %q, err %v", c.metricsOff, c.metricsAddr, c.src.from[setMetrics], err)
	}
	if c, err := resolve(map[string]string{"REPRISE_METRICS": "on"}, WithoutMetrics()); err != nil || !c.metricsOff {
		t.Errorf("WithoutMetrics with REPRISE_METRICS=on: off %v, err %v; want the option to win", c.metricsOff, err)
	}
	for env, name := range map[string]string{"REPRISE_METRICS": "maybe", "REPRISE_METRICS_ADDR": "9464"} {
		if _, err := resolve(map[string]string{env: name}); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v, want an error naming it", env, name, err)
		}
	}
}
