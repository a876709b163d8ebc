package reprise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Configuration comes from, in decreasing precedence: the options given to NewApp, the REPRISE_*
// environment variables, host.json, and the defaults. Options are the app's code and say what it
// needs: nothing outside the code overrides them. The environment (the deployment's app settings)
// and host.json fill in what the options left open, the environment first, as app settings come
// before host.json in Azure Functions. A variable or host.json setting that an option overrides is
// ignored, and the start-up log says so (decision 0010). It is resolved by App.Start, which logs
// one line saying where each setting came from, and fails with an error naming the setting when
// one is invalid.
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
//	REPRISE_RETENTION_DEFAULT            retention of every finished status not set below (a TimeSpan, a Go duration or "never")
//	REPRISE_RETENTION_COMPLETED          retention of Completed instances (likewise _FAILED, _TERMINATED, _CANCELED)
//	REPRISE_RETENTION_BATCH_SIZE         instances purged per batch (default 100)
//	REPRISE_RETENTION_PAUSE              least pause after a full batch (default 100ms)
//	REPRISE_RETENTION_INTERVAL           how often retention looks once it has caught up (default 1m)
//	REPRISE_METRICS                      "on" (default) or "off" (see WithoutMetrics)
//	REPRISE_METRICS_ADDR                 also serve /metrics without a key on this address (see WithMetricsListener)
//	REPRISE_DEFAULT_VERSION              the orchestration version stamped on new instances, and this host's (see Versioning)
//	REPRISE_VERSION_MATCH_STRATEGY       "None", "Strict" or "CurrentOrOlder" (default)
//	REPRISE_VERSION_FAILURE_STRATEGY     "Reject" (default) or "Fail"
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
//	      "defaultVersion": "2.0", "versionMatchStrategy": "CurrentOrOlder", "versionFailureStrategy": "Reject",
//	      (see Versioning and docs/versioning.md)
//	      "retention": { "completed": "7.00:00:00", "failed": "30.00:00:00" },
//	      (finished instances are purged that long after they finished; see Retention and
//	      docs/retention.md for "default", "terminated", "canceled", "batchSize",
//	      "pauseBetweenBatches" and "interval"; off by default)
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
			Retention                          json.RawMessage `json:"retention"`
			versioningJSON
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

// Setting names, as the start-up log shows them.
const (
	setStore    = "store"
	setHub      = "hub"
	setAddr     = "addr"
	setMaster   = "masterKey"
	setSystem   = "systemKey"
	setHostKeys = "hostKeys"
	setFuncKeys = "functionKeys"
	setMgmtAuth = "managementAuth"
	setMaxBody  = "maxRequestBody"
	setMaxAct   = "maxConcurrentActivities"
	setMaxOrch  = "maxConcurrentOrchestrations"
	setMetrics  = "metrics"
	setMetAddr  = "metricsAddr"
)

// Where a setting came from.
const (
	fromOption   = "option"
	fromDefault  = "default"
	fromHostJSON = "host.json"
)

// sources records where each setting came from, and what was set outside the code but not used
// because an option decided it.
type sources struct {
	from    map[string]string
	ignored []string
}

func (s *sources) set(setting, from string) {
	if s.from == nil {
		s.from = map[string]string{}
	}
	s.from[setting] = from
}

// fill reports whether a setting is still open; if it is, it records from as its source. If it
// is not, and the setting was decided by an option, what tried to set it is recorded as ignored.
func (s *sources) fill(setting, from string) bool {
	if prev, ok := s.from[setting]; ok {
		if prev == fromOption && from != fromDefault && !slices.Contains(s.ignored, from) {
			s.ignored = append(s.ignored, from)
		}
		return false
	}
	s.set(setting, from)
	return true
}

// resolve fills in what the options left open: from the environment, then host.json, then the
// defaults.
func (c *config) resolve(getenv func(string) string) error {
	c.src = sources{}
	for _, o := range []struct {
		setting string
		given   bool
	}{
		{setStore, c.store != nil || c.storePath != "" || c.postgresDSN != ""},
		{setHub, c.hub != ""},
		{setAddr, c.addr != ""},
		{setMaster, c.keys.Master != ""},
		{setSystem, c.keys.System != ""},
		{setHostKeys, len(c.keys.Host) > 0},
		{setFuncKeys, len(c.keys.Functions) > 0},
		{setMgmtAuth, c.anonymousSet},
		{setMaxBody, c.maxBody > 0},
		{setMaxAct, c.maxAct > 0},
		{setMaxOrch, c.maxOrch > 0},
		{setMetrics, c.metricsSet || c.meterProvider != nil},
		{setMetAddr, c.metricsAddr != ""},
	} {
		if o.given {
			c.src.set(o.setting, fromOption)
		}
	}
	c.markRetentionOptions()
	c.markVersioningOptions()
	if err := c.applyEnv(getenv); err != nil {
		return err
	}
	if err := c.applyHostJSON(getenv("REPRISE_HOST_JSON"), getenv); err != nil {
		return err
	}
	c.resolveServer(getenv)
	if c.src.fill(setStore, fromDefault) {
		c.storePath = DefaultStorePath
	}
	if c.src.fill(setHub, fromDefault) {
		c.hub = "default"
	}
	if !hubPattern.MatchString(c.hub) {
		return settingError("hub name", c.hub, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
	}
	if c.src.fill(setAddr, fromDefault) {
		c.addr = DefaultAddr
	}
	if c.src.fill(setMaxBody, fromDefault) {
		c.maxBody = DefaultMaxRequestBody
	}
	c.src.fill(setMgmtAuth, fromDefault)
	c.resolveRetentionDefaults()
	if err := c.resolveVersioning(); err != nil {
		return err
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
	if dt.HubName != nil {
		if !hubPattern.MatchString(*dt.HubName) {
			return settingError(where("hubName"), *dt.HubName, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
		}
		if c.src.fill(setHub, where("hubName")) {
			c.hub = *dt.HubName
		}
	}
	for _, s := range []struct {
		setting, key string
		n            *json.Number
		dst          *int
	}{
		{setMaxAct, "maxConcurrentActivityFunctions", dt.MaxConcurrentActivityFunctions, &c.maxAct},
		{setMaxOrch, "maxConcurrentOrchestratorFunctions", dt.MaxConcurrentOrchestratorFunctions, &c.maxOrch},
	} {
		if s.n == nil {
			continue
		}
		n, err := positive(s.n.String())
		if err != nil {
			return settingError(where(s.key), s.n.String(), err.Error())
		}
		if c.src.fill(s.setting, where(s.key)) {
			*s.dst = n
		}
	}
	if err := c.applyRetentionHostJSON(dt.Retention, where); err != nil {
		return err
	}
	if err := c.applyVersioningHostJSON(dt.versioningJSON, where); err != nil {
		return err
	}
	if len(dt.StorageProvider) == 0 || string(dt.StorageProvider) == "null" {
		return nil
	}
	var sp storageProvider
	if err := json.Unmarshal(dt.StorageProvider, &sp); err != nil {
		return settingError(where("storageProvider"), string(dt.StorageProvider), "want an object such as {\"type\": \"sqlite\", \"file\": \"reprise.db\"}")
	}
	switch strings.ToLower(sp.Type) {
	case "", "sqlite":
		if sp.File != "" && c.src.fill(setStore, where("storageProvider")) {
			c.storePath = sp.File
		}
	case "postgres", "postgresql":
		if _, decided := c.src.from[setStore]; decided {
			// Not even read: the DSN's variable may well be unset where another store is used.
			c.src.fill(setStore, where("storageProvider"))
			return nil
		}
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
		c.src.fill(setStore, where("storageProvider"))
		c.postgresDSN = dsn
	default:
		return settingError(where("storageProvider.type"), sp.Type, "want \"sqlite\" (the embedded store) or \"postgres\"")
	}
	return nil
}

// applyEnv fills in from the REPRISE_* variables what the options left open. Every variable that
// is set is checked, used or not, so that a mistake in one never goes unnoticed.
func (c *config) applyEnv(getenv func(string) string) error {
	if v := getenv("REPRISE_STORE"); v != "" {
		isPG := isPostgresDSN(v)
		if !isPG && strings.Contains(v, "://") {
			return settingError("REPRISE_STORE", redactDSN(v), "want a SQLite file path or a postgres:// DSN")
		}
		if c.src.fill(setStore, "REPRISE_STORE") {
			if isPG {
				c.postgresDSN = v
			} else {
				c.storePath = v
			}
		}
	}
	if v := getenv("REPRISE_HUB"); v != "" {
		if !hubPattern.MatchString(v) {
			return settingError("REPRISE_HUB", v, "want 1 to 64 letters, digits, '-' or '_', starting with a letter")
		}
		if c.src.fill(setHub, "REPRISE_HUB") {
			c.hub = v
		}
	}
	if v := getenv("REPRISE_ADDR"); v != "" {
		if !strings.Contains(v, ":") {
			return settingError("REPRISE_ADDR", v, "want host:port, e.g. 127.0.0.1:7071 or :8080")
		}
		if c.src.fill(setAddr, "REPRISE_ADDR") {
			c.addr = v
		}
	}
	if v := getenv("REPRISE_METRICS"); v != "" {
		var off bool
		switch strings.ToLower(v) {
		case "on", "true", "1":
		case "off", "false", "0":
			off = true
		default:
			return settingError("REPRISE_METRICS", v, `want "on" or "off"`)
		}
		if c.src.fill(setMetrics, "REPRISE_METRICS") {
			c.metricsOff = off
		}
	}
	if v := getenv("REPRISE_METRICS_ADDR"); v != "" {
		if !strings.Contains(v, ":") {
			return settingError("REPRISE_METRICS_ADDR", v, "want host:port, e.g. 127.0.0.1:9464")
		}
		if c.src.fill(setMetAddr, "REPRISE_METRICS_ADDR") {
			c.metricsAddr = v
		}
	}
	if v := getenv("REPRISE_MASTER_KEY"); v != "" && c.src.fill(setMaster, "REPRISE_MASTER_KEY") {
		c.keys.Master = v
	}
	if v := getenv("REPRISE_HOST_KEYS"); v != "" && c.src.fill(setHostKeys, "REPRISE_HOST_KEYS") {
		c.keys.Host = splitList(v)
	}
	if v := getenv("REPRISE_SYSTEM_KEY"); v != "" && c.src.fill(setSystem, "REPRISE_SYSTEM_KEY") {
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
		if c.src.fill(setFuncKeys, "REPRISE_FUNCTION_KEYS") {
			c.keys.Functions = fk
		}
	}
	switch v := strings.ToLower(getenv("REPRISE_MANAGEMENT_AUTH")); v {
	case "":
	case "system", "anonymous":
		if c.src.fill(setMgmtAuth, "REPRISE_MANAGEMENT_AUTH") {
			c.anonymousManagement = v == "anonymous"
		}
	default:
		return settingError("REPRISE_MANAGEMENT_AUTH", v, `want "system" or "anonymous"`)
	}
	if v := getenv("REPRISE_MAX_REQUEST_BODY"); v != "" {
		n, err := byteSize(v)
		if err != nil {
			return settingError("REPRISE_MAX_REQUEST_BODY", v, err.Error())
		}
		if c.src.fill(setMaxBody, "REPRISE_MAX_REQUEST_BODY") {
			c.maxBody = n
		}
	}
	for _, s := range []struct {
		setting, name string
		dst           *int
	}{
		{setMaxAct, "REPRISE_MAX_CONCURRENT_ACTIVITIES", &c.maxAct},
		{setMaxOrch, "REPRISE_MAX_CONCURRENT_ORCHESTRATIONS", &c.maxOrch},
	} {
		if v := getenv(s.name); v != "" {
			n, err := positive(v)
			if err != nil {
				return settingError(s.name, v, err.Error())
			}
			if c.src.fill(s.setting, s.name) {
				*s.dst = n
			}
		}
	}
	if err := c.applyRetentionEnv(getenv); err != nil {
		return err
	}
	if err := c.applyVersioningEnv(getenv); err != nil {
		return err
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
