package reprise

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/reprise-dev/reprise/store"
)

// A host generates the keys its configuration leaves open and keeps them in its store, per task
// hub, as the Functions host keeps its secrets in storage: the master key always, the system key
// unless the management API is anonymous. So they survive restarts (the URLs a host handed out
// keep working), every host of a hub shares them, and `reprise keys` prints them.
const (
	masterKeySetting = "keys/master"
	systemKeySetting = "keys/system/durabletask_extension"
)

// Sources of generated keys.
const (
	fromGenerated = "generated at this start, kept in the store"
	fromStore     = "the store (generated at the first start)"
)

// hostKeys returns the configured keys with the master and system keys the configuration left
// open taken from the store, generated and stored at the first start.
func (c *config) hostKeys(ctx context.Context, st store.Store) (Keys, error) {
	k := c.keys
	for _, g := range []struct {
		setting, name string
		dst           *string
		need          bool
	}{
		{setMaster, masterKeySetting, &k.Master, true},
		{setSystem, systemKeySetting, &k.System, !c.anonymousManagement},
	} {
		if *g.dst != "" || !g.need {
			continue
		}
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return k, fmt.Errorf("reprise: generate the %s: %w", g.setting, err)
		}
		fresh := hex.EncodeToString(b[:])
		v, err := st.Setting(ctx, g.name, []byte(fresh))
		if err != nil {
			return k, fmt.Errorf("reprise: read the %s this task hub keeps in its store (or set it: see Keys): %w", g.setting, err)
		}
		*g.dst = string(v)
		if *g.dst == fresh {
			c.src.set(g.setting, fromGenerated)
		} else {
			c.src.set(g.setting, fromStore)
		}
	}
	return k, nil
}

// logConfiguration logs, in one line, each main setting with where it came from (an option, a
// variable, host.json, the store or the default), and what an option overrode. Keys are never
// logged, only where they came from.
func (a *App) logConfiguration() {
	c := &a.cfg
	from := func(setting string) string { return c.src.from[setting] }
	mgmt := "system or master key"
	if c.anonymousManagement {
		mgmt = "anonymous"
	}
	system := from(setSystem)
	if system == "" {
		system = "none (the management API is anonymous)"
	}
	attrs := []any{
		"store", a.storeDescription() + " (" + from(setStore) + ")",
		"hub", c.hub + " (" + from(setHub) + ")",
		"addr", c.addr + " (" + from(setAddr) + ")",
		"managementAuth", mgmt + " (" + from(setMgmtAuth) + ")",
		"masterKey", from(setMaster),
		"systemKey", system,
		"tracing", a.tracingSource,
	}
	metricsFrom := cmp.Or(from(setMetrics), fromDefault)
	switch {
	case c.metricsOff:
		attrs = append(attrs, "metrics", "off ("+metricsFrom+")")
	case c.meterProvider != nil:
		attrs = append(attrs, "metrics", "to the MeterProvider given in code")
	case c.metricsAddr != "":
		attrs = append(attrs, "metrics", MetricsPath+" (master key) and http://"+c.metricsAddr+MetricsPath+" (no key; "+from(setMetAddr)+")")
	default:
		attrs = append(attrs, "metrics", MetricsPath+" (master key unless the management API is anonymous)")
	}
	for _, s := range []string{setHostKeys, setFuncKeys, setMaxAct, setMaxOrch, setMaxBody} {
		if f := from(s); f != "" && f != fromDefault {
			attrs = append(attrs, s, f)
		}
	}
	attrs = append(attrs, "retention", c.describeRetention(), "versioning", c.describeVersioning())
	if len(c.src.ignored) > 0 {
		attrs = append(attrs, "overriddenByOptions", strings.Join(c.src.ignored, ", "))
	}
	msg := "configuration"
	for _, s := range []string{setMaster, setSystem} {
		if f := from(s); f == fromGenerated || f == fromStore {
			msg += ": the generated keys are kept in the store; print them with `reprise keys` (go run github.com/reprise-dev/reprise/cmd/reprise keys) where the app runs"
			break
		}
	}
	a.logger.Info(msg, attrs...)
}

// GeneratedKeys are the keys hosts of a task hub generated and keep in its store.
type GeneratedKeys struct {
	Store string // where they were read, such as "sqlite:reprise.db"
	Hub   string
	// Master and System are "" when no host generated them (yet): hosts generate only what their
	// configuration leaves open.
	Master, System string
}

// ReadGeneratedKeys reads the keys that hosts generated and keep in the store, from the store and
// task hub an App with these options would use (the options, then the REPRISE_* variables, then
// host.json, as Start resolves them). It generates no key (opening the store brings its schema
// up to date, as a host would); a SQLite file that does not exist is an error, not created.
// `reprise keys` prints what it returns.
func ReadGeneratedKeys(ctx context.Context, opts ...Option) (GeneratedKeys, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.getenv == nil {
		cfg.getenv = os.Getenv
	}
	cfg.logger = slog.New(slog.DiscardHandler)
	if err := cfg.resolve(cfg.getenv); err != nil {
		return GeneratedKeys{}, err
	}
	a := &App{cfg: cfg}
	out := GeneratedKeys{Store: a.storeDescription(), Hub: cfg.hub}
	if cfg.store == nil && cfg.postgresDSN == "" {
		if _, err := os.Stat(cfg.storePath); errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("reprise: there is no SQLite store %s (%s): a host creates it at its first start; "+
				"point at the store the host uses (REPRISE_STORE, host.json or the directory the host runs in): %w", cfg.storePath, cfg.src.from[setStore], fs.ErrNotExist)
		}
	}
	st, owns, err := openStore(ctx, &cfg)
	if err != nil {
		return out, err
	}
	if owns {
		defer st.Close()
	}
	for _, k := range []struct {
		name string
		dst  *string
	}{{masterKeySetting, &out.Master}, {systemKeySetting, &out.System}} {
		v, err := st.Setting(ctx, k.name, nil)
		if err != nil {
			return out, fmt.Errorf("reprise: read the generated keys: %w", err)
		}
		*k.dst = string(v)
	}
	return out, nil
}
