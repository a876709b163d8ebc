package reprise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Configuration comes from, in increasing precedence: the defaults, host.json, the options given
// to NewApp, and the REPRISE_* environment variables. Options are part of the app's code; the
// environment belongs to the deployment, which has the last word (as app settings do over
// host.json in Azure Functions). It is resolved by App.Start, which fails with an error naming
// the setting when one is invalid.
//
// Environment variables:
//
//	REPRISE_HOST_JSON                    path of host.json (default: host.json in the working directory, if present)
//	REPRISE_STORE                        the store: a SQLite file path, or a postgres:// (postgresql://) DSN
//	REPRISE_HUB                          the task hub
//	REPRISE_ADDR                         the listen address of ListenAndServe (default 127.0.0.1:7071)
//	REPRISE_MASTER_KEY                   the master (admin) key
//	REPRISE_HOST_KEYS                    host keys, comma-separated
//	REPRISE_FUNCTION_KEYS                function keys: name=key pairs, comma-separated
//	REPRISE_SYSTEM_KEY                   the system key of the management API (durabletask_extension)
//	REPRISE_MANAGEMENT_AUTH              "system" (the default: system or master key) or "anonymous"
//	REPRISE_ALLOWED_HOSTS                host names the keyless routes answer besides loopback ones, comma-separated
//	REPRISE_MAX_REQUEST_BODY             request body limit in bytes, or with a KiB/MiB suffix (default 4MiB)
//	REPRISE_MAX_CONCURRENT_ACTIVITIES    activities run at once
//	REPRISE_MAX_CONCURRENT_ORCHESTRATIONS orchestration episodes run at once
//	REPRISE_LOG_FORMAT                   "text" (default) or "json"; ignored when WithLogger is given
//	REPRISE_LOG_LEVEL                    "debug", "info" (default), "warn" or "error"; ignored with WithLogger
//
// host.json, as Durable Functions users know it:
//
//	{
//	  "version": "2.0",
//	  "extensions": {
//	    "durableTask": {
//	      "hubName": "MyHub",
//	      "maxConcurrentActivityFunctions": 64,
//	      "maxConcurrentOrchestratorFunctions": 64,
//	      "storageProvider": { "type": "sqlite", "file": "reprise.db" }
//	      (or { "type": "postgres", "connectionStringName": "PG_DSN" }: the DSN is read from the
//	      environment variable named, as Functions reads connection strings from app settings;
//	      "connectionString" gives it inline)
//	    }
//	  }
//	}

const (
	// DefaultAddr is where ListenAndServe listens unless configured otherwise.
	DefaultAddr = "127.0.0.1:7071"
	// DefaultMaxRequestBody bounds HTTP request bodies unless configured otherwise.
	DefaultMaxRequestBody = 4 << 20
)

// hubPattern keeps hub names safe to put in URLs, file names and SQL identifiers alike.
var hubPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// hostJSON is the part of host.json that Reprise reads. Other settings are ignored, so that a
// Durable Functions app's host.json can be used as it is.
type hostJSON struct {
	Extensions struct {
		DurableTask struct {
			HubName                            *string         `json:"hubName"`
			MaxConcurrentActivityFunctions     *json.Number    `json:"maxConcurrentActivityFunctions"`
			MaxConcurrentOrchestratorFunctions *json.Number    `json:"maxConcurrentOrchestratorFunctions"`
			StorageProvider                    json.RawMessage `json:"storageProvider"`
		} `json:"durableTask"`
	} `json:"extensions"`
}

// storageProvider is extensions.durableTask.storageProvider. An empty object, or one without a
// type (an Azure Storage configuration), means the embedded SQLite store.
type storageProvider struct {
	Type                 string `json:"type"`
	File                 string `json:"file"`
	ConnectionString     string `json:"connectionString"`
	ConnectionStringName string `json:"connectionStringName"`
}

// settingError names the setting that is wrong and what would be right.
func settingError(setting, value, want string) error {
	return fmt.Errorf("reprise: invalid setting %s = %q: %s", setting, value, want)
}

// resolve applies host.json and the environment to the options' configuration.
func (c *config) resolve(getenv func(string) string) error {
	if err := c.applyHostJSON(getenv("REPRISE_HOST_JSON"), getenv); err != nil {
		return err
	}
	if err := c.applyEnv(getenv); err != nil {
		return err
	}
	c.resolveServer(getenv)
	if c.store == nil && c.storePath == "" && c.postgresDSN == "" {
		c.storePath = DefaultStorePath
	}
	if c.hub == "" {
		c.hub = "default"
	}
	if !hubPattern.MatchString(c.hub) {
		return settingError("hub name", c.hub, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
	}
	if c.addr == "" {
		c.addr = DefaultAddr
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxRequestBody
	}
	if c.shutdownTimeout <= 0 {
		c.shutdownTimeout = 30 * time.Second
	}
	return nil
}

func (c *config) applyHostJSON(path string, getenv func(string) string) error {
	explicit := path != ""
	if !explicit {
		path = "host.json"
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reprise: read host.json (REPRISE_HOST_JSON): %w", err)
	}
	var h hostJSON
	if err := json.Unmarshal(data, &h); err != nil {
		return fmt.Errorf("reprise: %s is not valid JSON: %w", path, err)
	}
	dt := h.Extensions.DurableTask
	where := func(key string) string { return path + ": extensions.durableTask." + key }
	if dt.HubName != nil && c.hub == "" {
		c.hub = *dt.HubName
		if !hubPattern.MatchString(c.hub) {
			return settingError(where("hubName"), c.hub, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
		}
	}
	if dt.MaxConcurrentActivityFunctions != nil && c.maxAct == 0 {
		n, err := positive(dt.MaxConcurrentActivityFunctions.String())
		if err != nil {
			return settingError(where("maxConcurrentActivityFunctions"), dt.MaxConcurrentActivityFunctions.String(), err.Error())
		}
		c.maxAct = n
	}
	if dt.MaxConcurrentOrchestratorFunctions != nil && c.maxOrch == 0 {
		n, err := positive(dt.MaxConcurrentOrchestratorFunctions.String())
		if err != nil {
			return settingError(where("maxConcurrentOrchestratorFunctions"), dt.MaxConcurrentOrchestratorFunctions.String(), err.Error())
		}
		c.maxOrch = n
	}
	if len(dt.StorageProvider) > 0 && string(dt.StorageProvider) != "null" {
		var sp storageProvider
		if err := json.Unmarshal(dt.StorageProvider, &sp); err != nil {
			return settingError(where("storageProvider"), string(dt.StorageProvider), "want an object such as {\"type\": \"sqlite\", \"file\": \"reprise.db\"}")
		}
		unset := c.store == nil && c.storePath == "" && c.postgresDSN == ""
		switch strings.ToLower(sp.Type) {
		case "", "sqlite":
			if sp.File != "" && unset {
				c.storePath = sp.File
			}
		case "postgres", "postgresql":
			dsn := sp.ConnectionString
			if sp.ConnectionStringName != "" {
				if dsn = getenv(sp.ConnectionStringName); dsn == "" {
					return settingError(where("storageProvider.connectionStringName"), sp.ConnectionStringName,
						"the environment variable it names is empty; set it to a postgres:// DSN")
				}
			}
			if !isPostgresDSN(dsn) {
				return settingError(where("storageProvider"), redactDSN(dsn), "want a postgres:// DSN in connectionString, or the name of an environment variable holding one in connectionStringName")
			}
			if unset {
				c.postgresDSN = dsn
			}
		default:
			return settingError(where("storageProvider.type"), sp.Type, "want \"sqlite\" (the embedded store) or \"postgres\"")
		}
	}
	return nil
}

func (c *config) applyEnv(getenv func(string) string) error {
	if v := getenv("REPRISE_STORE"); v != "" {
		switch {
		case isPostgresDSN(v):
			c.store, c.storePath, c.postgresDSN = nil, "", v
		case strings.Contains(v, "://"):
			return settingError("REPRISE_STORE", redactDSN(v), "want a SQLite file path or a postgres:// DSN")
		default:
			c.store, c.storePath, c.postgresDSN = nil, v, ""
		}
	}
	if v := getenv("REPRISE_HUB"); v != "" {
		if !hubPattern.MatchString(v) {
			return settingError("REPRISE_HUB", v, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
		}
		c.hub = v
	}
	if v := getenv("REPRISE_ADDR"); v != "" {
		if !strings.Contains(v, ":") {
			return settingError("REPRISE_ADDR", v, "want host:port, e.g. 127.0.0.1:7071 or :8080")
		}
		c.addr = v
	}
	if v := getenv("REPRISE_MASTER_KEY"); v != "" {
		c.keys.Master = v
	}
	if v := getenv("REPRISE_HOST_KEYS"); v != "" {
		c.keys.Host = splitList(v)
	}
	if v := getenv("REPRISE_SYSTEM_KEY"); v != "" {
		c.keys.System = v
	}
	if v := getenv("REPRISE_FUNCTION_KEYS"); v != "" {
		fk := map[string][]string{}
		for _, pair := range splitList(v) {
			name, key, ok := strings.Cut(pair, "=")
			if !ok || name == "" || key == "" {
				return settingError("REPRISE_FUNCTION_KEYS", "…", "want name=key pairs separated by commas")
			}
			fk[name] = append(fk[name], key)
		}
		c.keys.Functions = fk
	}
	switch v := strings.ToLower(getenv("REPRISE_MANAGEMENT_AUTH")); v {
	case "":
	case "system":
		c.anonymousManagement = false
	case "anonymous":
		c.anonymousManagement = true
	default:
		return settingError("REPRISE_MANAGEMENT_AUTH", v, `want "system" or "anonymous"`)
	}
	if v := getenv("REPRISE_MAX_REQUEST_BODY"); v != "" {
		n, err := byteSize(v)
		if err != nil {
			return settingError("REPRISE_MAX_REQUEST_BODY", v, err.Error())
		}
		c.maxBody = n
	}
	for _, s := range []struct {
		name string
		dst  *int
	}{
		{"REPRISE_MAX_CONCURRENT_ACTIVITIES", &c.maxAct},
		{"REPRISE_MAX_CONCURRENT_ORCHESTRATIONS", &c.maxOrch},
	} {
		if v := getenv(s.name); v != "" {
			n, err := positive(v)
			if err != nil {
				return settingError(s.name, v, err.Error())
			}
			*s.dst = n
		}
	}
	if c.logger == nil {
		l, err := envLogger(getenv("REPRISE_LOG_FORMAT"), getenv("REPRISE_LOG_LEVEL"))
		if err != nil {
			return err
		}
		c.logger = l
	}
	return nil
}

// envLogger builds the default logger: text or JSON on standard error.
func envLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, settingError("REPRISE_LOG_LEVEL", level, `want "debug", "info", "warn" or "error"`)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, settingError("REPRISE_LOG_FORMAT", format, `want "text" or "json"`)
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive integer")
	}
	return n, nil
}

// byteSize parses "1048576", "512KiB" or "4MiB".
func byteSize(s string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, errors.New("want a positive number of bytes, optionally with a KiB, MiB or GiB suffix")
	}
	return n * mult, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// redactDSN hides a password in a connection string before it reaches an error message.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			return dsn[:i+3] + "…@" + dsn[at+1:]
		}
	}
	return dsn
}
