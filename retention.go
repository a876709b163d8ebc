package reprise

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-dev/reprise/internal/retention"
	"github.com/reprise-dev/reprise/store"
)

// Retention says how long finished orchestration instances are kept before the App purges them
// (with their history, inbox and activity tasks), by the status they finished in. The age of an
// instance is the time since it finished, not since it was created. Entities are never purged;
// a sub-orchestration is purged by its own status and age. Retention is off by default, as in
// Durable Functions: instances are kept until purged through the API.
//
// Each status is a setting of its own (decision 0010): a status the option leaves at zero (and
// Default does not fill) is left to REPRISE_RETENTION_* and host.json. A negative duration keeps
// the status for ever, whatever Default, the environment or host.json say.
//
// The purge runs in the background on every host of the task hub, in small batches that keep
// out of the way of the work (see docs/retention.md); several hosts on one PostgreSQL hub share
// it safely.
type Retention struct {
	// Default is the retention of each status below that is zero.
	Default                                 time.Duration
	Completed, Failed, Terminated, Canceled time.Duration

	// BatchSize bounds the instances one batch purges (default 100).
	BatchSize int
	// Pause is the least time between a full batch and the next (default 100ms); the loop also
	// waits at least as long as the batch took.
	Pause time.Duration
	// Interval is how often the loop looks again once a batch found less than a full batch to
	// purge (default 1m).
	Interval time.Duration
}

// WithRetention purges finished instances once they are older than the retention of their status.
func WithRetention(r Retention) Option { return func(c *config) { c.retentionOpt = r } }

// retentionStatuses are the statuses retention can purge, in the order they are configured.
var retentionStatuses = []store.Status{store.StatusCompleted, store.StatusFailed, store.StatusTerminated, store.StatusCanceled}

// Retention settings, as the start-up log names them; a status's is "retention.<status>".
const (
	setRetBatch    = "retention.batchSize"
	setRetPause    = "retention.pauseBetweenBatches"
	setRetInterval = "retention.interval"
)

func retSetting(s store.Status) string { return "retention." + strings.ToLower(s.String()) }

// retentionConfig is the resolved retention: an age per status (less than 0: never, from a
// "never" that decided it; 0: nobody set it), and the loop's tuning (0: the default).
type retentionConfig struct {
	age      map[store.Status]time.Duration
	batch    int
	pause    time.Duration
	interval time.Duration
}

func (r Retention) status(s store.Status) time.Duration {
	v := map[store.Status]time.Duration{store.StatusCompleted: r.Completed, store.StatusFailed: r.Failed,
		store.StatusTerminated: r.Terminated, store.StatusCanceled: r.Canceled}[s]
	if v == 0 {
		v = r.Default
	}
	return v
}

// markRetentionOptions records the retention settings the option decided.
func (c *config) markRetentionOptions() {
	c.retention = retentionConfig{age: map[store.Status]time.Duration{}}
	o := c.retentionOpt
	for _, s := range retentionStatuses {
		if v := o.status(s); v != 0 {
			c.retention.age[s] = v
			c.src.set(retSetting(s), fromOption)
		}
	}
	if o.BatchSize > 0 {
		c.retention.batch = o.BatchSize
		c.src.set(setRetBatch, fromOption)
	}
	if o.Pause > 0 {
		c.retention.pause = o.Pause
		c.src.set(setRetPause, fromOption)
	}
	if o.Interval > 0 {
		c.retention.interval = o.Interval
		c.src.set(setRetInterval, fromOption)
	}
}

// applyRetentionEnv fills in from REPRISE_RETENTION_* what the options left open.
func (c *config) applyRetentionEnv(getenv func(string) string) error {
	parse := func(name string) (time.Duration, bool, error) {
		v := getenv(name)
		if v == "" {
			return 0, false, nil
		}
		d, err := parseRetention(v)
		if err != nil {
			return 0, false, settingError(name, v, err.Error())
		}
		return d, true, nil
	}
	def, haveDef, err := parse("REPRISE_RETENTION_DEFAULT")
	if err != nil {
		return err
	}
	for _, s := range retentionStatuses {
		name := "REPRISE_RETENTION_" + strings.ToUpper(s.String())
		d, ok, err := parse(name)
		if err != nil {
			return err
		}
		if !ok && haveDef {
			d, ok, name = def, true, "REPRISE_RETENTION_DEFAULT"
		}
		if ok && c.src.fill(retSetting(s), name) {
			c.retention.age[s] = d
		}
	}
	if v := getenv("REPRISE_RETENTION_BATCH_SIZE"); v != "" {
		n, err := positive(v)
		if err != nil {
			return settingError("REPRISE_RETENTION_BATCH_SIZE", v, err.Error())
		}
		if c.src.fill(setRetBatch, "REPRISE_RETENTION_BATCH_SIZE") {
			c.retention.batch = n
		}
	}
	for _, t := range []struct {
		setting, name string
		dst           *time.Duration
	}{
		{setRetPause, "REPRISE_RETENTION_PAUSE", &c.retention.pause},
		{setRetInterval, "REPRISE_RETENTION_INTERVAL", &c.retention.interval},
	} {
		if v := getenv(t.name); v != "" {
			d, err := parseTimeSpan(v)
			if err != nil || d <= 0 {
				return settingError(t.name, v, "want a positive duration: a TimeSpan such as 00:00:01 or a Go duration such as 1s")
			}
			if c.src.fill(t.setting, t.name) {
				*t.dst = d
			}
		}
	}
	return nil
}

// hostJSONRetention is extensions.durableTask.retention.
type hostJSONRetention struct {
	Default             *string      `json:"default"`
	Completed           *string      `json:"completed"`
	Failed              *string      `json:"failed"`
	Terminated          *string      `json:"terminated"`
	Canceled            *string      `json:"canceled"`
	BatchSize           *json.Number `json:"batchSize"`
	PauseBetweenBatches *string      `json:"pauseBetweenBatches"`
	Interval            *string      `json:"interval"`
}

// applyRetentionHostJSON fills in from host.json's retention section what the options and the
// environment left open. where names a key of extensions.durableTask in messages.
func (c *config) applyRetentionHostJSON(raw json.RawMessage, where func(string) string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var h hostJSONRetention
	if err := json.Unmarshal(raw, &h); err != nil {
		return settingError(where("retention"), string(raw),
			`want an object such as {"completed": "7.00:00:00", "failed": "30.00:00:00"} (TimeSpans, or "never")`)
	}
	parse := func(key string, v *string) (time.Duration, bool, error) {
		if v == nil {
			return 0, false, nil
		}
		d, err := parseRetention(*v)
		if err != nil {
			return 0, false, settingError(where("retention."+key), *v, err.Error())
		}
		return d, true, nil
	}
	def, haveDef, err := parse("default", h.Default)
	if err != nil {
		return err
	}
	for _, s := range retentionStatuses {
		key := strings.ToLower(s.String())
		v := map[store.Status]*string{store.StatusCompleted: h.Completed, store.StatusFailed: h.Failed,
			store.StatusTerminated: h.Terminated, store.StatusCanceled: h.Canceled}[s]
		d, ok, err := parse(key, v)
		if err != nil {
			return err
		}
		if !ok && haveDef {
			d, ok, key = def, true, "default"
		}
		if ok && c.src.fill(retSetting(s), where("retention."+key)) {
			c.retention.age[s] = d
		}
	}
	if h.BatchSize != nil {
		n, err := positive(h.BatchSize.String())
		if err != nil {
			return settingError(where("retention.batchSize"), h.BatchSize.String(), err.Error())
		}
		if c.src.fill(setRetBatch, where("retention.batchSize")) {
			c.retention.batch = n
		}
	}
	for _, t := range []struct {
		setting, key string
		v            *string
		dst          *time.Duration
	}{
		{setRetPause, "pauseBetweenBatches", h.PauseBetweenBatches, &c.retention.pause},
		{setRetInterval, "interval", h.Interval, &c.retention.interval},
	} {
		if t.v == nil {
			continue
		}
		d, err := parseTimeSpan(*t.v)
		if err != nil || d <= 0 {
			return settingError(where("retention."+t.key), *t.v, "want a positive TimeSpan such as 00:00:01")
		}
		if c.src.fill(t.setting, where("retention."+t.key)) {
			*t.dst = d
		}
	}
	return nil
}

// resolveRetentionDefaults records the defaults of what nobody set.
func (c *config) resolveRetentionDefaults() {
	for _, s := range retentionStatuses {
		c.src.fill(retSetting(s), fromDefault)
	}
	if c.src.fill(setRetBatch, fromDefault) {
		c.retention.batch = retention.DefaultBatchSize
	}
	if c.src.fill(setRetPause, fromDefault) {
		c.retention.pause = retention.DefaultPause
	}
	if c.src.fill(setRetInterval, fromDefault) {
		c.retention.interval = retention.DefaultInterval
	}
}

// policy returns the resolved ages as a retention.Policy (a status kept for ever at 0).
func (r retentionConfig) policy() retention.Policy {
	age := func(s store.Status) time.Duration { return max(r.age[s], 0) }
	return retention.Policy{Completed: age(store.StatusCompleted), Failed: age(store.StatusFailed),
		Terminated: age(store.StatusTerminated), Canceled: age(store.StatusCanceled)}
}

// describeRetention is the retention part of the configuration log line.
func (c *config) describeRetention() string {
	if !c.retention.policy().Enabled() {
		return "off (" + c.src.from[retSetting(store.StatusCompleted)] + ")"
	}
	var parts []string
	for _, s := range retentionStatuses {
		v := "kept"
		if d := c.retention.age[s]; d > 0 {
			v = formatTimeSpan(d)
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", strings.ToLower(s.String()), v, c.src.from[retSetting(s)]))
	}
	parts = append(parts, fmt.Sprintf("batches of %d (%s)", c.retention.batch, c.src.from[setRetBatch]),
		fmt.Sprintf("pause %v (%s)", c.retention.pause, c.src.from[setRetPause]),
		fmt.Sprintf("interval %v (%s)", c.retention.interval, c.src.from[setRetInterval]))
	return strings.Join(parts, ", ")
}

// parseRetention parses a retention: a positive TimeSpan or Go duration, or "never" (kept for
// ever, returned as -1).
func parseRetention(s string) (time.Duration, error) {
	if strings.EqualFold(strings.TrimSpace(s), "never") {
		return -1, nil
	}
	d, err := parseTimeSpan(s)
	if err != nil || d <= 0 {
		return 0, errors.New(`want a positive TimeSpan such as 7.00:00:00 (7 days) or 12:00:00, a Go duration such as 168h, or "never"`)
	}
	return d, nil
}

// parseTimeSpan parses a .NET TimeSpan as host.json writes them: "d.hh:mm:ss.fffffff" with the
// days and the fraction optional, "hh:mm", or a whole number of days ("7"). A Go duration
// ("90s", "168h") is taken too.
func parseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a TimeSpan ([d.]hh:mm[:ss[.fffffff]]) or a Go duration", s)
	if s == "" || strings.HasPrefix(s, "-") {
		return 0, bad
	}
	if strings.ContainsAny(s, "hmsuµn") {
		return time.ParseDuration(s)
	}
	num := func(p string, limit int64) (int64, bool) {
		if p == "" || len(p) > 8 || strings.Trim(p, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(p, 10, 64)
		return n, err == nil && (limit == 0 || n < limit)
	}
	colon := strings.Index(s, ":")
	if colon < 0 {
		days, ok := num(s, 0)
		if !ok || days > 100000 {
			return 0, bad
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	var days int64
	rest := s
	if dot := strings.Index(s, "."); dot >= 0 && dot < colon {
		d, ok := num(s[:dot], 0)
		if !ok || d > 100000 {
			return 0, bad
		}
		days, rest = d, s[dot+1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	h, ok1 := num(parts[0], 24)
	m, ok2 := num(parts[1], 60)
	if !ok1 || !ok2 {
		return 0, bad
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	if len(parts) == 3 {
		sec, frac, hasFrac := strings.Cut(parts[2], ".")
		n, ok := num(sec, 60)
		if !ok {
			return 0, bad
		}
		d += time.Duration(n) * time.Second
		if hasFrac {
			if frac == "" || len(frac) > 7 || strings.Trim(frac, "0123456789") != "" {
				return 0, bad
			}
			f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			d += time.Duration(f)
		}
	}
	return d, nil
}

// formatTimeSpan writes d as a TimeSpan: "7.00:00:00", "12:30:00".
func formatTimeSpan(d time.Duration) string {
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	out := fmt.Sprintf("%02d:%02d:%02d", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
	if frac := d % time.Second; frac != 0 {
		out += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
	}
	if days > 0 {
		out = strconv.FormatInt(int64(days), 10) + "." + out
	}
	return out
}
