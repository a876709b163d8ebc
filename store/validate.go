package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidArgument means an argument cannot be stored or matched as given: text that is not
// UTF-8 or holds a NUL byte, a key longer than MaxKeyBytes, tags past MaxTagsBytes, a time outside
// [MinTime, MaxTime].
// Nothing was written; fix the argument.
var ErrInvalidArgument = errors.New("invalid argument")

// MaxKeyBytes bounds the text a store keys or indexes: instance IDs, names, ID prefixes. Past
// it PostgreSQL cannot index the row, and no sane key is that long.
const MaxKeyBytes = 2048

// The supported range of times: the years 1678 to 2261 (UTC), in which SQLite's nanosecond
// integers cannot overflow. Bounds and creation times outside it are ErrInvalidArgument; within
// it every store honours a bound exactly.
const (
	MinYear = 1678
	MaxYear = 2261
)

// MinTime and MaxTime return the first and the last instant of the supported range (MaxTime at
// microsecond resolution, the finest PostgreSQL keeps).
func MinTime() time.Time { return time.Date(MinYear, 1, 1, 0, 0, 0, 0, time.UTC) }

// MaxTime: see MinTime.
func MaxTime() time.Time { return time.Date(MaxYear, 12, 31, 23, 59, 59, 999999000, time.UTC) }

// CheckText returns an error wrapping ErrInvalidArgument, naming what (such as "instance ID"),
// when s is not valid UTF-8, holds a NUL byte or is longer than maxBytes (0: no limit). Every
// text column of PostgreSQL refuses the first two, and SQLite would store them but compare them
// differently from Go once they pass through JSON.
func CheckText(what, s string, maxBytes int) error {
	switch {
	case maxBytes > 0 && len(s) > maxBytes:
		return fmt.Errorf("%w: the %s is %d bytes long, the limit is %d", ErrInvalidArgument, what, len(s), maxBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: the %s %q is not valid UTF-8", ErrInvalidArgument, what, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: the %s %q contains a NUL character", ErrInvalidArgument, what, s)
	}
	return nil
}

// CheckID checks an instance ID as a store takes it: not empty, plus CheckText with MaxKeyBytes.
// Front ends apply stricter rules to the IDs users choose.
func CheckID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: the instance ID is empty", ErrInvalidArgument)
	}
	return CheckText("instance ID", id, MaxKeyBytes)
}

// CheckTime returns an error wrapping ErrInvalidArgument, naming what, when t is neither zero
// nor within [MinTime, MaxTime]. The zero time means "none" (no bound, or "now") wherever the
// store takes a time.
func CheckTime(what string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(MinTime()) || t.After(MaxTime()) {
		return fmt.Errorf("%w: the %s %s is outside the supported range %s to %s", ErrInvalidArgument, what,
			t.UTC().Format(time.RFC3339Nano), MinTime().Format(time.RFC3339), MaxTime().Format(time.RFC3339Nano))
	}
	return nil
}

// Check checks the filters of q as stores take them (CheckTime, CheckText): callers get
// ErrInvalidArgument instead of a wrong answer.
func (q Query) Check() error {
	if err := CheckTime("createdTimeFrom bound", q.CreatedFrom); err != nil {
		return err
	}
	if err := CheckTime("createdTimeTo bound", q.CreatedTo); err != nil {
		return err
	}
	if err := CheckTime("updatedTimeFrom bound", q.UpdatedFrom); err != nil {
		return err
	}
	if err := CheckTime("updatedTimeTo bound", q.UpdatedTo); err != nil {
		return err
	}
	if q.Kind != KindOrchestration && q.Kind != KindEntity {
		return fmt.Errorf("%w: unknown instance kind %d", ErrInvalidArgument, int(q.Kind))
	}
	if err := CheckText("instance ID prefix", q.IDPrefix, MaxKeyBytes); err != nil {
		return err
	}
	if err := CheckText("orchestrator name", q.Name, MaxKeyBytes); err != nil {
		return err
	}
	if len(q.Versions) > MaxQueryVersions {
		return fmt.Errorf("%w: the query lists %d versions, the limit is %d; list fewer, or leave the version filter out",
			ErrInvalidArgument, len(q.Versions), MaxQueryVersions)
	}
	for _, v := range q.Versions {
		if err := CheckText("orchestration version filter", v, MaxKeyBytes); err != nil {
			return err
		}
	}
	// Tokens are ASCII; anything else is not one a store handed out.
	if CheckText("", q.ContinuationToken, 4*MaxKeyBytes) != nil {
		return fmt.Errorf("%w %q: pass back the token of a previous page unchanged", ErrInvalidToken, q.ContinuationToken)
	}
	return nil
}

// Check checks each name of a claim as stores key names (CheckText with MaxKeyBytes). A name
// that fails could never match the work it names: SQLite would see invalid UTF-8 through JSON as
// U+FFFD, PostgreSQL refuses it. The mark of AllNamesExcept passes in first position only, and
// the excluded names are checked as any others.
func (n Names) Check() error {
	if excluded, ok := n.Except(); ok {
		n = excluded
	}
	for _, name := range n {
		if name == allExceptMark {
			return fmt.Errorf("%w: the mark of AllNamesExcept is among the claimed names but not first; build the set with AllNamesExcept", ErrInvalidArgument)
		}
		if err := CheckText("claimed name", name, MaxKeyBytes); err != nil {
			return err
		}
	}
	return nil
}

// Check checks the time bounds of f (CheckTime) and its limit.
func (f PurgeFilter) Check() error {
	if err := CheckTime("createdTimeFrom bound", f.CreatedFrom); err != nil {
		return err
	}
	if err := CheckTime("createdTimeTo bound", f.CreatedTo); err != nil {
		return err
	}
	if f.Limit < 0 {
		return fmt.Errorf("%w: purge limit %d is negative; want 0 (no limit) or more", ErrInvalidArgument, f.Limit)
	}
	return CheckTime("updated-before bound", f.UpdatedBefore)
}

// MaxTagsBytes bounds an instance's tags: the bytes of all keys and values together (TagsSize).
// Tags are labels, read back with every instance, not a place for payloads.
const MaxTagsBytes = 16 << 10

// TagsSize is the bytes of the keys and values of tags, which MaxTagsBytes bounds.
func TagsSize(tags map[string]string) int {
	n := 0
	for k, v := range tags {
		n += len(k) + len(v)
	}
	return n
}

// MaxQueryVersions bounds the versions of one Query: each is a bound parameter of the store's
// statement, and a filter of that many versions is a listing of (nearly) everything anyway.
const MaxQueryVersions = 100

// CheckVersion checks an orchestration version as stores take it: CheckText with MaxKeyBytes.
func CheckVersion(version string) error {
	return CheckText("orchestration version", version, MaxKeyBytes)
}

// CheckTags checks tags as stores take them: keys and values valid UTF-8 without NUL
// (CheckText), and MaxTagsBytes in all.
func CheckTags(tags map[string]string) error {
	if n := TagsSize(tags); n > MaxTagsBytes {
		return fmt.Errorf("%w: the tags are %d bytes long (keys and values), the limit is %d", ErrInvalidArgument, n, MaxTagsBytes)
	}
	for k, v := range tags {
		if err := CheckText("tag key", k, 0); err != nil {
			return err
		}
		if err := CheckText("value of tag "+strconv.Quote(k), v, 0); err != nil {
			return err
		}
	}
	return nil
}

// Check checks what a store keys on in an instance: its ID (CheckID), name, parent and execution
// IDs (CheckText), version (CheckVersion), tags (CheckTags), and its creation and update times
// (CheckTime).
func (inst Instance) Check() error {
	if err := CheckID(inst.ID); err != nil {
		return err
	}
	for _, f := range [...]struct{ what, s string }{
		{"orchestrator name", inst.Name}, {"parent instance ID", inst.ParentID}, {"execution ID", inst.ExecutionID},
	} {
		if err := CheckText(f.what, f.s, MaxKeyBytes); err != nil {
			return fmt.Errorf("instance %q: %w", inst.ID, err)
		}
	}
	if err := CheckVersion(inst.Version); err != nil {
		return fmt.Errorf("instance %q: %w", inst.ID, err)
	}
	if err := CheckTags(inst.Tags); err != nil {
		return fmt.Errorf("instance %q: %w", inst.ID, err)
	}
	if err := CheckTime("creation time", inst.CreatedAt); err != nil {
		return fmt.Errorf("instance %q: %w", inst.ID, err)
	}
	return CheckTime("update time", inst.UpdatedAt)
}

// CheckCreate checks the arguments of CreateInstance as every store takes them: the instance
// (Instance.Check), its kind (orchestrations only) and the reuse policy.
func CheckCreate(inst Instance, policy ReusePolicy) error {
	if err := inst.Check(); err != nil {
		return err
	}
	if inst.Kind != KindOrchestration {
		return fmt.Errorf("instance %q: %w: CreateInstance creates orchestrations only, not a %s; an entity comes into being with its first message (SendEntityMessages)", inst.ID, ErrInvalidArgument, inst.Kind)
	}
	if policy < ReuseIfFinished || policy > ReuseAlways {
		return fmt.Errorf("instance %q: unknown reuse policy %d", inst.ID, int(policy))
	}
	return nil
}

// PositionToken is the continuation token of a listing ordered by creation time, then ID: the
// position after a page's last instance, as its creation time (a number in the store's own
// unit) and its ID. ParsePositionToken reads it back.
func PositionToken(created int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(created, 10) + ":" + id))
}

// ParsePositionToken reads a PositionToken; anything else is ErrInvalidToken.
func ParsePositionToken(tok string) (created int64, id string, err error) {
	bad := fmt.Errorf("%w %q: pass back the token of a previous page unchanged", ErrInvalidToken, tok)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", bad
	}
	num, id, ok := strings.Cut(string(raw), ":")
	if !ok {
		return 0, "", bad
	}
	created, err = strconv.ParseInt(num, 10, 64)
	if err != nil || CheckText("", id, 0) != nil {
		return 0, "", bad
	}
	return created, id, nil
}

// CheckEpisode checks the arguments of CommitEpisode as every store takes them: the instance's
// ID and version, the sub-orchestrations it starts, its entity messages and its task lease (see
// TaskLease.Check). It clears the lease's Leased, which the store fills in once the commit holds.
func CheckEpisode(e Episode) error {
	id := e.Instance.ID
	if id == "" {
		return errors.New("empty instance ID")
	}
	if err := CheckVersion(e.Instance.Version); err != nil {
		return fmt.Errorf("instance %q: %w", id, err)
	}
	for _, st := range e.Starts {
		if err := st.Instance.Check(); err != nil {
			return fmt.Errorf("instance %q: start of a sub-orchestration: %w", id, err)
		}
	}
	for _, m := range e.EntityMessages {
		if err := CheckEntityMessage(m); err != nil {
			return fmt.Errorf("instance %q: entity message: %w", id, err)
		}
	}
	if c := e.Completes; c != nil {
		if e.Lease != (Lease{}) {
			return fmt.Errorf("instance %q: %w: a merged completion comes without a claim, but the episode has lease %+v", id, ErrInvalidArgument, e.Lease)
		}
		if err := c.Check(); err != nil {
			return fmt.Errorf("instance %q: %w", id, err)
		}
	}
	if tl := e.LeaseTasks; tl != nil {
		tl.Leased = nil
		if err := tl.Check(len(e.Tasks)); err != nil {
			return fmt.Errorf("instance %q: %w", id, err)
		}
	}
	return nil
}
