package reprise

import (
	"fmt"

	"github.com/reprise-dev/reprise/internal/versioning"
	"github.com/reprise-dev/reprise/store"
)

// Versioning says which orchestration version an App stamps on the instances it starts, and
// which versions it runs, as Durable Functions' orchestration versioning does: two builds of an
// app can share a task hub during a rolling deploy, each host running only the instances it can.
//
// DefaultVersion is stamped on every instance the App starts without WithVersion (through the
// Client, the management API, or an entity), permanently: restarts, rewinds and continue-as-new
// keep it, and sub-orchestrations inherit it (ctx.Version). It is also the App's own version,
// which MatchStrategy compares with the version of each instance the App claims, using .NET's
// System.Version order ("1.10" > "1.9"; see docs/versioning.md). An instance the App does not run
// is, by FailureStrategy, left for another host (Reject) or failed (Fail, with errorType
// "VersionMismatch"). An App without a DefaultVersion runs every instance.
//
// Each field is a setting of its own (decision 0010): one left empty is filled in from the
// REPRISE_DEFAULT_VERSION, REPRISE_VERSION_MATCH_STRATEGY and REPRISE_VERSION_FAILURE_STRATEGY
// variables, then from host.json's extensions.durableTask defaultVersion, versionMatchStrategy
// and versionFailureStrategy, then the defaults: no version, CurrentOrOlder, Reject.
type Versioning struct {
	DefaultVersion  string
	MatchStrategy   VersionMatchStrategy
	FailureStrategy VersionFailureStrategy
}

// VersionMatchStrategy says which instance versions a host with a version runs. The names are
// those of host.json's versionMatchStrategy; they are matched case-insensitively.
type VersionMatchStrategy string

// Version match strategies.
const (
	// VersionMatchCurrentOrOlder runs instances of the App's version or older, and those started
	// without a version: the default.
	VersionMatchCurrentOrOlder VersionMatchStrategy = "CurrentOrOlder"
	// VersionMatchStrict runs only instances of exactly the App's version.
	VersionMatchStrict VersionMatchStrategy = "Strict"
	// VersionMatchNone runs every instance; the default version is still stamped on new ones.
	VersionMatchNone VersionMatchStrategy = "None"
)

// VersionFailureStrategy says what a host does with an instance whose version it does not run.
type VersionFailureStrategy string

// Version failure strategies.
const (
	// VersionFailureReject leaves the instance, untouched, for a host that runs its version: the
	// default. The App gives it back after a short delay (from 250ms, growing to 5s while it
	// keeps getting the same instance back), so the instance waits until such a host claims it.
	VersionFailureReject VersionFailureStrategy = "Reject"
	// VersionFailureFail fails the instance, without running it, with a failure of errorType
	// "VersionMismatch" ("The orchestration version '2.0' is greater than the worker version
	// '1.0'.").
	VersionFailureFail VersionFailureStrategy = "Fail"
)

// WithVersioning sets the App's default orchestration version and what it does with instances
// of other versions (see Versioning).
func WithVersioning(v Versioning) Option { return func(c *config) { c.versioningOpt = v } }

// Versioning settings, as the start-up log names them.
const (
	setDefVersion = "defaultVersion"
	setVerMatch   = "versionMatchStrategy"
	setVerFail    = "versionFailureStrategy"
)

// markVersioningOptions records the versioning settings the option decided; resolveVersioning
// checks them.
func (c *config) markVersioningOptions() {
	o := c.versioningOpt
	c.versioning = versioning.Policy{Version: o.DefaultVersion}
	for _, s := range []struct {
		setting string
		given   bool
	}{
		{setDefVersion, o.DefaultVersion != ""},
		{setVerMatch, o.MatchStrategy != ""},
		{setVerFail, o.FailureStrategy != ""},
	} {
		if s.given {
			c.src.set(s.setting, fromOption)
		}
	}
}

// setVersioning applies one versioning setting from source, if it is still open; value is
// checked whether it is used or not.
func (c *config) setVersioning(setting, source, value string) error {
	switch setting {
	case setDefVersion:
		if err := store.CheckVersion(value); err != nil {
			return settingError(source, value, "want a version of at most 2048 bytes of UTF-8 without NUL, such as 1.0")
		}
		if c.src.fill(setting, source) {
			c.versioning.Version = value
		}
	case setVerMatch:
		m, err := versioning.ParseMatch(value)
		if err != nil {
			return settingError(source, value, `want "None", "Strict" or "CurrentOrOlder"`)
		}
		if c.src.fill(setting, source) {
			c.versioning.Match = m
		}
	case setVerFail:
		f, err := versioning.ParseFailure(value)
		if err != nil {
			return settingError(source, value, `want "Reject" or "Fail"`)
		}
		if c.src.fill(setting, source) {
			c.versioning.Failure = f
		}
	}
	return nil
}

// applyVersioningEnv fills in from REPRISE_* what the option left open.
func (c *config) applyVersioningEnv(getenv func(string) string) error {
	for _, s := range []struct{ setting, name string }{
		{setDefVersion, "REPRISE_DEFAULT_VERSION"},
		{setVerMatch, "REPRISE_VERSION_MATCH_STRATEGY"},
		{setVerFail, "REPRISE_VERSION_FAILURE_STRATEGY"},
	} {
		if v := getenv(s.name); v != "" {
			if err := c.setVersioning(s.setting, s.name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// versioningJSON is the versioning part of extensions.durableTask.
type versioningJSON struct {
	DefaultVersion         *string `json:"defaultVersion"`
	VersionMatchStrategy   *string `json:"versionMatchStrategy"`
	VersionFailureStrategy *string `json:"versionFailureStrategy"`
}

// applyVersioningHostJSON fills in from host.json what the option and the environment left open.
func (c *config) applyVersioningHostJSON(h versioningJSON, where func(string) string) error {
	for _, s := range []struct {
		setting string
		v       *string
	}{
		{setDefVersion, h.DefaultVersion},
		{setVerMatch, h.VersionMatchStrategy},
		{setVerFail, h.VersionFailureStrategy},
	} {
		if s.v == nil || (*s.v == "" && s.setting == setDefVersion) {
			continue // "defaultVersion": "" is what a template without a version writes
		}
		if err := c.setVersioning(s.setting, where(s.setting), *s.v); err != nil {
			return err
		}
	}
	return nil
}

// resolveVersioning checks what the option set, and records the defaults of what nobody set.
func (c *config) resolveVersioning() error {
	o := c.versioningOpt
	if o.DefaultVersion != "" {
		if err := store.CheckVersion(o.DefaultVersion); err != nil {
			return settingError("WithVersioning DefaultVersion", o.DefaultVersion, "want a version of at most 2048 bytes of UTF-8 without NUL, such as 1.0")
		}
	}
	if o.MatchStrategy != "" {
		m, err := versioning.ParseMatch(string(o.MatchStrategy))
		if err != nil {
			return settingError("WithVersioning MatchStrategy", string(o.MatchStrategy), `want VersionMatchNone, VersionMatchStrict or VersionMatchCurrentOrOlder`)
		}
		c.versioning.Match = m
	}
	if o.FailureStrategy != "" {
		f, err := versioning.ParseFailure(string(o.FailureStrategy))
		if err != nil {
			return settingError("WithVersioning FailureStrategy", string(o.FailureStrategy), `want VersionFailureReject or VersionFailureFail`)
		}
		c.versioning.Failure = f
	}
	c.src.fill(setDefVersion, fromDefault)
	if c.src.fill(setVerMatch, fromDefault) {
		c.versioning.Match = versioning.CurrentOrOlder
	}
	if c.src.fill(setVerFail, fromDefault) {
		c.versioning.Failure = versioning.Reject
	}
	return nil
}

// describeVersioning is the versioning part of the configuration log line.
func (c *config) describeVersioning() string {
	from := func(s string) string { return c.src.from[s] }
	p := c.versioning
	if p.Version == "" {
		return "off: no default version (" + from(setDefVersion) + "); every instance runs here"
	}
	out := fmt.Sprintf("defaultVersion %s (%s), versionMatchStrategy %s (%s)", p.Version, from(setDefVersion), p.Match, from(setVerMatch))
	if p.Match != versioning.None {
		out += fmt.Sprintf(", versionFailureStrategy %s (%s)", p.Failure, from(setVerFail))
	}
	return out
}

// defaultVersion is the version stamped on the instances the App starts without one.
func (a *App) defaultVersion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.versioning.Version
}
