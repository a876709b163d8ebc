// Package store defines the persistence contract of Reprise: the Store interface that every
// storage backend implements, and the records it keeps.
//
// A Store is bound to one task hub when it is opened. It keeps four kinds of data for that hub:
//
//   - instances: one row per orchestration instance (status, name, input, output, ...) and one
//     per durable entity (Kind KindEntity; see Instance);
//   - history: the append-only history of the current execution of an instance, as opaque chunks;
//   - inbox messages: events waiting for an instance, each visible from a given time (timers are
//     messages with a future visible time);
//   - activity tasks: activity invocations waiting for (or held by) an activity worker.
//
// The engine encodes history events and messages itself; to the store they are opaque bytes. The
// store's job is to keep them durably, hand out work under leases, and apply each commit atomically
// and fenced by its lease, so that a node that lost its lease can never overwrite another's work.
//
// The conformance suite in package storetest states the contract as tests; every Store passes it.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by stores. Implementations wrap them with context; test with errors.Is.
var (
	// ErrNotFound means the instance does not exist in the task hub.
	ErrNotFound = errors.New("instance not found")
	// ErrInstanceExists means an instance with the ID exists and the reuse policy forbids replacing it.
	ErrInstanceExists = errors.New("instance already exists")
	// ErrInstanceActive means the operation needs a finished instance (Completed, Failed,
	// Terminated or Canceled) and the instance is still Pending, Running or Suspended.
	ErrInstanceActive = errors.New("instance is still active")
	// ErrLeaseLost means the caller's lease on a work item expired and the item was claimed by
	// someone else, or the instance was replaced or purged; the commit was not applied.
	ErrLeaseLost = errors.New("lease lost")
	// ErrInvalidToken means a continuation token was not one the store handed out.
	ErrInvalidToken = errors.New("invalid continuation token")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrNotFailed means the operation needs a Failed instance (RewindInstance).
	ErrNotFailed = errors.New("instance has not failed")
	// ErrInstanceBusy means a merged completion (Episode.Completes) found its instance leased,
	// moved on from the execution the episode was computed on, or with messages waiting; the
	// commit was not applied, and the caller completes the task with CompleteActivity instead.
	ErrInstanceBusy = errors.New("instance busy")
)

// Status is the runtime status of an orchestration instance. The numeric values are those of
// Durable Functions' OrchestrationRuntimeStatus, so they can be stored and exchanged as numbers.
type Status int

// Runtime statuses.
const (
	StatusRunning        Status = 0
	StatusCompleted      Status = 1
	StatusContinuedAsNew Status = 2
	StatusFailed         Status = 3
	StatusCanceled       Status = 4
	StatusTerminated     Status = 5
	StatusPending        Status = 6
	StatusSuspended      Status = 7
)

var statusNames = [...]string{
	StatusRunning:        "Running",
	StatusCompleted:      "Completed",
	StatusContinuedAsNew: "ContinuedAsNew",
	StatusFailed:         "Failed",
	StatusCanceled:       "Canceled",
	StatusTerminated:     "Terminated",
	StatusPending:        "Pending",
	StatusSuspended:      "Suspended",
}

// String returns the Durable Functions name of the status ("Running", "Completed", ...).
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ParseStatus parses a status name, case-insensitively.
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if strings.EqualFold(n, name) {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("unknown runtime status %q: want one of %s", name, strings.Join(statusNames[:], ", "))
}

// Terminal reports whether the status is final: Completed, Failed, Canceled or Terminated.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCanceled, StatusTerminated:
		return true
	}
	return false
}

// Active reports whether the instance is still live: Pending, Running, ContinuedAsNew or Suspended.
func (s Status) Active() bool { return !s.Terminal() }

// Kind says what an instance is: an orchestration or a durable entity.
type Kind int

// Instance kinds. The zero value is an orchestration, so that code written before entities
// existed means what it always meant.
const (
	KindOrchestration Kind = 0
	KindEntity        Kind = 1
)

// String returns "orchestration" or "entity".
func (k Kind) String() string {
	switch k {
	case KindOrchestration:
		return "orchestration"
	case KindEntity:
		return "entity"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Instance is the stored state of one orchestration instance or durable entity.
//
// An entity (Kind KindEntity) is created by the first message sent to it (SendEntityMessages,
// Episode.EntityMessages) and lives until DeleteEntity removes it. Its ID is EntityInstanceID of
// its name and key; Name is its entity name; Status is always StatusRunning; Output is its state
// (JSON; nil when it has none, which means the entity does not exist although the row is kept);
// CustomStatus is the engine's summary of its scheduler (the lock holder, the backlog), and its
// history is the engine's scheduler state, appended to by batches and replaced now and then
// (Episode.ResetHistory). The
// store reads none of these: they are opaque to it, as for orchestrations.
type Instance struct {
	ID          string
	Kind        Kind // set when the instance is created; commits cannot change it
	Name        string
	ExecutionID string // changes on continue-as-new
	ParentID    string // the parent orchestration of a sub-orchestration, else ""
	Status      Status

	// Version is the orchestration version the instance was started with, "" for none; a
	// continue-as-new may change it. Tags are the caller's labels, set when the instance is
	// created and kept until it is replaced; nil means none (an empty map reads back as nil).
	// Both are opaque to the store; CheckVersion and CheckTags say what it takes.
	Version string
	Tags    map[string]string

	Input        []byte // JSON; nil means null
	Output       []byte // JSON; nil means null
	CustomStatus []byte // JSON; nil means null
	Failure      []byte // JSON-encoded failure details when Failed; opaque to the store

	CreatedAt time.Time
	UpdatedAt time.Time

	// HistoryLen is the number of history chunks of the current execution. The store maintains it;
	// the engine compares it with a cached execution to detect that someone else moved on.
	HistoryLen int
}

// Size is the bytes of the instance's variable-size fields (IDs, name, version, tags, payloads,
// failure), which Query.MaxBytes counts.
func (i Instance) Size() int {
	return len(i.ID) + len(i.Name) + len(i.ExecutionID) + len(i.ParentID) + len(i.Version) + TagsSize(i.Tags) +
		len(i.Input) + len(i.Output) + len(i.CustomStatus) + len(i.Failure)
}

// Message is an event waiting in an instance's inbox.
type Message struct {
	ID          int64  // assigned by the store
	InstanceID  string // the receiving instance
	ExecutionID string // the execution it is meant for; "" means whichever is current
	Data        []byte // the encoded event; opaque to the store
	VisibleAt   time.Time
	// VisibleAt is when the message may be delivered; the zero time means at once.
}

// Task is an activity invocation waiting for an activity worker.
type Task struct {
	ID          int64 // assigned by the store
	InstanceID  string
	ExecutionID string
	Name        string // the activity name
	Data        []byte // the encoded invocation (task ID, input, attempt); opaque to the store
}

// Lease identifies one claim of a work item. Commits and completions must present it; the store
// rejects them with ErrLeaseLost when the item has since been claimed again, replaced or purged.
type Lease struct {
	Owner string // the claiming node
	Token int64  // unique per claim
}

// Claim names one claimed work item with its lease: the instance InstanceID claimed for an
// episode (Kind OrchestrationWorkKind) or a batch (Kind EntityWorkKind), or the activity task
// TaskID (Kind ActivityWorkKind).
// RenewLeases takes claims, so that a node renews only the items it still works on and an item
// it gave up on (a failed commit, a stuck orchestrator) expires and is claimed again.
type Claim struct {
	Kind       WorkKind
	InstanceID string // OrchestrationWorkKind
	TaskID     int64  // ActivityWorkKind
	Lease      Lease
}

// OrchestrationWork is an instance claimed for one episode, with the messages visible to it.
type OrchestrationWork struct {
	Instance Instance
	Messages []Message
	Lease    Lease
}

// ActivityWork is an activity task claimed by an activity worker.
type ActivityWork struct {
	Task  Task
	Lease Lease
}

// Claim returns the claim of the instance (of kind EntityWorkKind for an entity).
func (w OrchestrationWork) Claim() Claim {
	kind := OrchestrationWorkKind
	if w.Instance.Kind == KindEntity {
		kind = EntityWorkKind
	}
	return Claim{Kind: kind, InstanceID: w.Instance.ID, Lease: w.Lease}
}

// Claim returns the claim of the task.
func (w ActivityWork) Claim() Claim {
	return Claim{Kind: ActivityWorkKind, TaskID: w.Task.ID, Lease: w.Lease}
}

// Start creates a sub-orchestration instance as part of an episode.
type Start struct {
	Instance Instance // the new instance, normally StatusPending
	Message  Message  // its ExecutionStarted message
	// OnConflict is delivered (to its own InstanceID, normally the parent) instead of creating the
	// instance when an active instance already holds the ID. A finished instance with the ID is
	// replaced.
	OnConflict Message
}

// Episode is the outcome of one orchestration step, committed atomically: it consumes messages,
// appends history, updates the instance, and produces messages, activity tasks and new instances.
type Episode struct {
	Lease Lease
	// Instance is the new state of the claimed instance. CreatedAt, HistoryLen and Tags are
	// ignored: the store keeps the tags the instance was created with.
	Instance Instance

	Consumed     []int64  // IDs of inbox messages this episode processed
	ResetHistory bool     // drop the current history first (continue-as-new)
	History      [][]byte // chunks to append to the history

	Messages []Message // to any instance, including this one (timers)
	Tasks    []Task
	Starts   []Start
	// EntityMessages are messages to entities, delivered after Messages as SendEntityMessages
	// delivers them: an entity that does not exist is created first.
	EntityMessages []Message

	// LeaseTasks, when not nil, asks for some of Tasks to be inserted already leased (local
	// dispatch: the committing node runs them without claiming them). See TaskLease.
	LeaseTasks *TaskLease

	// Completes, when not nil, makes the episode one with the completion of an activity task:
	// the episode that processes the task's result, computed without a claim of the instance
	// (a merged completion). Lease is then the zero Lease. See Completion.
	Completes *Completion
}

// Completion names the activity task an episode completes (Episode.Completes): a node that ran
// the task under Lease, and holds the instance's live execution as of ExecutionID and
// HistoryLen, applied the task's result to that execution and computed the next episode from
// it, without claiming the instance. CommitEpisode then, in one transaction:
//
//   - deletes the task if Lease still holds it (else ErrLeaseLost); a task of another
//     instance than the episode's is refused (ErrInvalidArgument);
//   - takes the instance if it is an orchestration with no live lease, its ExecutionID and
//     HistoryLen are the ones given, and it has no visible inbox message (else
//     ErrInstanceBusy): as if the node had claimed it, the result being its only message;
//   - applies the episode as under a claim (the result is in its History: it is never
//     delivered as a message), inserting the tasks of LeaseTasks leased to Lease.Owner, and
//     leaves the instance unleased.
//
// A refused commit applies nothing: the task stays leased and the caller completes it with
// CompleteActivity. A commit whose reply was lost may have been applied: then the task is gone,
// and a retry, or a CompleteActivity, gets ErrLeaseLost. A store that does not know the field
// sees an episode without a lease and refuses it (ErrLeaseLost), so callers fall back to
// CompleteActivity on any error.
type Completion struct {
	TaskID      int64
	Lease       Lease // the task's
	ExecutionID string
	HistoryLen  int
}

// Check reports whether the completion is valid.
func (c *Completion) Check() error {
	if c.TaskID <= 0 || c.Lease.Owner == "" || c.Lease.Token == 0 || c.ExecutionID == "" || c.HistoryLen < 0 {
		return fmt.Errorf("%w: completion: task %d, lease %+v, execution %q, history length %d: want a task, its lease, and the execution as seen",
			ErrInvalidArgument, c.TaskID, c.Lease, c.ExecutionID, c.HistoryLen)
	}
	return nil
}

// TaskLease asks CommitEpisode to insert the tasks Tasks (indexes into Episode.Tasks) leased to
// the committer (the owner of the episode's lease) until For from the commit, as
// ClaimActivities would have leased them: renewed, completed and released like a claim's. The
// other tasks are inserted unleased, as without a TaskLease. Leased tasks wake no activity
// dispatcher: they are nobody else's work until their lease expires, and then anyone's.
//
// The store sets Leased when the commit succeeds (and only then): the leased tasks, with their
// IDs and leases, in the order of Tasks. A commit that fails (ErrLeaseLost among others)
// inserts no task, leased or not; one whose reply was lost may have inserted them, leased, and
// they are claimable once the lease expires. A store that does not know the field ignores it
// and leaves Leased nil, its tasks inserted unleased and claimed as usual: a caller must not
// count on Leased being set.
type TaskLease struct {
	For   time.Duration
	Tasks []int
	// Leased is the store's answer; a caller leaves it nil.
	Leased []ActivityWork
}

// Check reports whether the task lease is valid for an episode of n tasks.
func (l *TaskLease) Check(n int) error {
	if l.For <= 0 {
		return fmt.Errorf("%w: task lease: duration %v is not positive", ErrInvalidArgument, l.For)
	}
	seen := make(map[int]bool, len(l.Tasks))
	for _, i := range l.Tasks {
		if i < 0 || i >= n || seen[i] {
			return fmt.Errorf("%w: task lease: index %d is not that of one of the episode's %d tasks, once", ErrInvalidArgument, i, n)
		}
		seen[i] = true
	}
	return nil
}

// ReusePolicy says what CreateInstance does when an instance with the ID already exists.
type ReusePolicy int

const (
	// ReuseIfFinished replaces a finished (terminal) instance and refuses an active one. This is the
	// Durable Functions default ("NonRunningStates").
	ReuseIfFinished ReusePolicy = iota
	// ReuseNever refuses any existing instance.
	ReuseNever
	// ReuseAlways replaces the existing instance whatever its status; a node working on it loses its
	// lease ("AnyState").
	ReuseAlways
)

// Query selects instances for ListInstances. Zero fields do not filter, but for Kind: a query
// lists the instances of one kind only, orchestrations unless it says KindEntity.
type Query struct {
	Kind Kind
	// UpdatedFrom (inclusive) and UpdatedTo (exclusive) bound the update time (an entity's last
	// operation time).
	UpdatedFrom time.Time
	UpdatedTo   time.Time
	// SkipTransient leaves out the instances whose Output is nil: for entities, those without
	// state, which do not exist as far as their users are concerned.
	SkipTransient bool

	Statuses    []Status
	CreatedFrom time.Time // inclusive
	CreatedTo   time.Time // inclusive
	IDPrefix    string
	Name        string // the orchestrator's name, case-insensitively, as names are matched
	// Versions, when not empty, keeps the instances whose Version equals one of them: whole,
	// case-sensitive (bytewise) matches, as a version is stamped, with no ranges, prefixes or
	// version ordering; "" among them matches the instances without a version. It is an OR
	// within the list, ANDed with the other filters, and holds at most MaxQueryVersions
	// versions, each as CheckVersion takes it. Stores need no index for it: it narrows what the
	// other filters (status, creation time) walk.
	Versions []string
	PageSize int // 0 means 100
	// NewestFirst lists by creation time then ID descending, instead of ascending.
	NewestFirst bool

	// ContinuationToken continues a previous listing; "" starts from the beginning.
	ContinuationToken string

	// WithoutPayloads leaves Input, Output and CustomStatus nil, for cheap listings.
	WithoutPayloads bool

	// MaxBytes, when above 0, also bounds a page by size: once the instances of the page hold
	// MaxBytes bytes or more (Instance.Size), the page ends and its token continues after the last
	// one. A page holds at least one instance, however large.
	MaxBytes int
}

// PurgeFilter selects finished orchestration instances for PurgeInstances.
type PurgeFilter struct {
	CreatedFrom time.Time // inclusive; zero means no lower bound
	CreatedTo   time.Time // inclusive; zero means no upper bound
	Statuses    []Status  // restricted to terminal statuses; empty means all terminal statuses

	// UpdatedBefore (exclusive), when not zero, leaves the instances updated (UpdatedAt) or
	// created (CreatedAt) at or after it. A finished instance's UpdatedAt is when it finished, so
	// this purges the instances that finished before it (retention); the creation bound, which
	// a finished instance always meets, lets stores walk an index of creation times.
	UpdatedBefore time.Time
	// Limit, when above 0, purges at most Limit instances, which a store may delete in one
	// transaction: callers that purge in small batches (retention) keep each one short. Which of
	// the matching instances a limited purge takes is the store's choice. 0 means no limit.
	Limit int
}

// Names is the set of orchestrator or activity names a claimer can run. Claims hand out only
// work whose name is in the set, so that hosts with different registrations can share a task
// hub: each takes its own work and leaves the rest for a host that has it.
//
// Names match case-insensitively, as Query.Name does: SQLite folds ASCII letters only,
// PostgreSQL folds with lower(). An empty set claims nothing (a host that registered no
// activities takes no activity tasks); forgetting the names never means "any name", so that no
// claimer can take work it cannot run by accident. Within a name, work is handed out oldest
// first; a claim of several names serves them in turn, so that no name's backlog starves the
// others.
//
// A claimer that can run any name (a Durable Task worker that sent no filters) asks for it
// explicitly with AllNamesExcept, naming what it must leave to others: the names that Go code
// registered in the same process, say. Such a set is still a slice, so that code passing name
// lists keeps working: its first element is a mark that no valid name equals (CheckText refuses
// the NUL it holds), and the rest are the excluded names. Test for it with Except; do not build
// it by hand.
type Names []string

// allExceptMark opens a Names made by AllNamesExcept. It holds a NUL, which no name a store
// accepts can hold, so it cannot be confused with a name.
const allExceptMark = "\x00all-except"

// AllNamesExcept returns the set of every name except those given (case-insensitively, as names
// match). AllNamesExcept() is every name.
func AllNamesExcept(names ...string) Names {
	return append(Names{allExceptMark}, names...)
}

// Except reports whether n is a set made by AllNamesExcept and, if so, the names it excludes.
func (n Names) Except() (excluded []string, ok bool) {
	if len(n) == 0 || n[0] != allExceptMark {
		return nil, false
	}
	return n[1:], true
}

// Unclaimed is ready work of one name that a claimer with other names left alone (see
// Store.Unclaimed).
type Unclaimed struct {
	Kind  WorkKind
	Name  string
	Count int // instances (with visible messages) or tasks
	// Oldest is the ID of the oldest ready message (of those instances) or task. IDs grow, so a
	// caller that sees the same Oldest twice knows that nobody took that work in between.
	Oldest int64
}

// Backlog is the work waiting in a task hub, as Store.Backlog counts it: the numbers an
// autoscaler and the metrics read.
type Backlog struct {
	// OrchestrationMessages and EntityMessages are the inbox messages visible now (not future
	// timers or scheduled signals) of orchestrations and of entities, whether or not a node
	// holds the instance.
	OrchestrationMessages int
	EntityMessages        int
	// ActivityTasks are the activity tasks that no live lease holds: waiting for a worker.
	ActivityTasks int
}

// Transaction describes one write transaction of a store: the writes (commits, claims, sends,
// completions) that its writer grouped, and the time from the start of the transaction to its
// durable commit (or failure).
type Transaction struct {
	Writes   int
	Duration time.Duration
	// Synced says the commit waited for its log to reach the disk: one fsync (SQLite at full
	// durability, except a transaction of leases alone) or one WAL flush (PostgreSQL with
	// synchronous_commit on, for any transaction that changed a row). A store in memory never
	// syncs, nor does a failed transaction.
	Synced bool
	// Claims is how many of Writes were claims of work (ClaimOrchestrations, ClaimEntities,
	// ClaimActivities), and EmptyClaims how many of those leased nothing.
	Claims, EmptyClaims int
}

// TransactionObserver is implemented by stores that report their write transactions, for
// metrics and `reprise bench` (the bundled stores do). ObserveTransactions adds fn, called
// after each transaction on the store's writer (so it must be quick and must not block), and
// returns the function that removes it. Any number of observers may watch one store.
type TransactionObserver interface {
	ObserveTransactions(fn func(Transaction)) (remove func())
}

// WorkKind names a kind of work for wake-up signals.
type WorkKind int

// Work kinds.
const (
	OrchestrationWorkKind WorkKind = iota
	ActivityWorkKind
	EntityWorkKind // entities with visible messages (ClaimEntities)
)

// String returns "orchestration", "activity" or "entity".
func (k WorkKind) String() string {
	switch k {
	case OrchestrationWorkKind:
		return "orchestration"
	case ActivityWorkKind:
		return "activity"
	case EntityWorkKind:
		return "entity"
	}
	return fmt.Sprintf("WorkKind(%d)", int(k))
}

// Store is a task hub's persistent state. All methods are safe for concurrent use.
type Store interface {
	// Hub returns the task hub the store is bound to.
	Hub() string

	// CreateInstance creates an orchestration instance with its ExecutionStarted message,
	// applying the reuse policy when the ID exists (ErrInstanceExists). Replacing an instance
	// deletes its history, inbox and activity tasks. It refuses an entity (ErrInvalidArgument):
	// entities come into being with their first message (SendEntityMessages), and an ID that an
	// entity holds is never replaced (ErrInstanceExists).
	CreateInstance(ctx context.Context, inst Instance, start Message, policy ReusePolicy) error
	// GetInstance returns an instance of either kind, or ErrNotFound.
	GetInstance(ctx context.Context, id string) (Instance, error)
	// ListInstances returns one page of the instances matching q, ordered by creation time then ID
	// (ascending, or descending with q.NewestFirst), and the token of the next page ("" on the
	// last page).
	ListInstances(ctx context.Context, q Query) (page []Instance, next string, err error)
	// CountInstances counts the instances matching q's filters (its paging fields are ignored),
	// by status; statuses without instances are absent from the map.
	CountInstances(ctx context.Context, q Query) (map[Status]int, error)
	// History returns the history chunks of the instance's current execution, in order.
	History(ctx context.Context, id string) ([][]byte, error)
	// SendMessage adds a message to an existing instance's inbox (ErrNotFound otherwise).
	SendMessage(ctx context.Context, m Message) error
	// SendEntityMessages adds messages to the inboxes of entities, atomically and in order,
	// creating each entity that does not exist yet (Kind KindEntity, StatusRunning, no state,
	// Name from its ID). Every InstanceID must be an entity's (ParseEntityInstanceID; else
	// ErrInvalidArgument, and nothing is sent).
	SendEntityMessages(ctx context.Context, msgs []Message) error
	// DeleteEntity removes an entity with its history, if it still is as the caller saw it: no
	// state (Output nil), no live lease, no message in its inbox, and UpdatedAt equal to
	// updatedAt (so a batch committed since keeps it). It reports whether it removed it; an
	// entity that does not exist is not an error (false).
	DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error)
	// RewindInstance sets a Failed instance Running, clears its output and failure, and adds m
	// (the rewind command) to its inbox, atomically, so that a caller sees the instance running
	// as soon as the rewind is accepted. ErrNotFound, or ErrNotFailed for an instance in another
	// status (nothing is changed then).
	RewindInstance(ctx context.Context, id string, m Message) error
	// PurgeInstance deletes a finished orchestration instance with its history, inbox and tasks.
	// It returns ErrNotFound (for an entity too), or ErrInstanceActive for an instance that has
	// not finished.
	PurgeInstance(ctx context.Context, id string) error
	// PurgeInstances deletes the finished orchestration instances that match f, with their
	// history, inbox and tasks, and returns how many it deleted. Entities are never purged.
	// Callers on several nodes may purge at once: an instance is deleted (and counted) once.
	PurgeInstances(ctx context.Context, f PurgeFilter) (int, error)

	// ClaimOrchestrations leases up to max orchestration instances of the orchestrators in names
	// that have visible inbox messages and no live lease, and returns them with those messages (in
	// ID order). It never returns entities. Instances of other orchestrators are left for a claimer that lists them. With a set
	// made by AllNamesExcept, it leases instances of any orchestrator but the excluded ones, with
	// the same guarantees.
	ClaimOrchestrations(ctx context.Context, owner string, names Names, max int, leaseFor time.Duration) ([]OrchestrationWork, error)
	// CommitEpisode applies an episode atomically if the lease is still held (else ErrLeaseLost) and
	// releases the lease. It commits an entity's batch too (a claim of ClaimEntities). With
	// e.LeaseTasks, it inserts the tasks named there leased and reports them (see TaskLease).
	// With e.Completes, it completes an activity task and applies the episode of its result
	// in one, without a claim (see Completion).
	CommitEpisode(ctx context.Context, e Episode) error
	// ClaimEntities is ClaimOrchestrations for entities: it leases up to max entities of the
	// names (entity names) with visible messages and no live lease, with those messages. Entity
	// work has a claim of its own so that a burst of signals never takes an orchestration's turn.
	ClaimEntities(ctx context.Context, owner string, names Names, max int, leaseFor time.Duration) ([]OrchestrationWork, error)
	// ClaimActivities leases up to max tasks of the activities in names that have no live lease.
	// With a set made by AllNamesExcept, it leases tasks of any activity but the excluded ones.
	ClaimActivities(ctx context.Context, owner string, names Names, max int, leaseFor time.Duration) ([]ActivityWork, error)
	// CompleteActivity deletes the task and delivers its result message atomically, if the lease is
	// still held (else ErrLeaseLost).
	CompleteActivity(ctx context.Context, taskID int64, lease Lease, result Message) error
	// RenewLeases extends to now+leaseFor the leases of the claims (all of owner) that still
	// hold; a claim whose lease was lost, committed or released is skipped. now+leaseFor may be
	// sooner than a lease's expiry: a short renewal gives the item back after that delay (the
	// engine gives back so an instance of a version it does not run). Leases of owner that
	// are not listed are left to expire: a lease is live until its expiry, whether or not its
	// owner is alive, and once expired the item can be claimed again (by the owner too).
	// A call with no claims is valid: it announces owner as a live host (see store/postgres).
	RenewLeases(ctx context.Context, owner string, claims []Claim, leaseFor time.Duration) error
	// ReleaseLeases drops every lease held by owner, so other nodes can take the work at once.
	ReleaseLeases(ctx context.Context, owner string) error
	// Unclaimed counts the work that is ready to be claimed but whose name is in neither set:
	// instances with visible messages and no live lease whose orchestrator is not in
	// orchestrators, and tasks with no live lease whose activity is not in activities, by kind and
	// name (as stored, one casing per name). A set made by AllNamesExcept claims every name but
	// its excluded ones, so the unclaimed work of that kind is the work of the excluded names. It
	// reads the backlog of ready work, so callers run it now and then, not on every claim.
	// Entities are not counted.
	Unclaimed(ctx context.Context, orchestrators, activities Names) ([]Unclaimed, error)
	// Backlog counts the work waiting in the task hub (see Backlog), of every name. Like
	// Unclaimed it reads the whole backlog, so callers run it now and then (a metrics
	// collection), not on every claim.
	Backlog(ctx context.Context) (Backlog, error)
	// NextVisibleAt returns the earliest visible time of the messages not yet visible (to
	// instances of either kind), or the zero time when there are none. Dispatchers sleep until
	// then (durable timers, scheduled signals).
	NextVisibleAt(ctx context.Context) (time.Time, error)

	// WorkSignal returns a channel that receives a value (coalesced, never blocking the store) after
	// a commit in this process, or a notification from another node, that may have added work of
	// the kind. Every call returns a channel of its own, and each receives every wake-up, so that
	// several dispatchers on one store (an App's engine, a gRPC server's workers) all wake.
	// Channels are kept as long as the store: call it once per dispatcher, not per wait.
	WorkSignal(kind WorkKind) <-chan struct{}
	// WatchInstance returns a channel that is closed after the next committed change to the
	// instance (status, output, custom status), and a function to stop watching. Register before
	// reading the instance, so that no change is missed between the read and the wait.
	WatchInstance(id string) (changed <-chan struct{}, stop func())

	// Setting returns the value of a setting of the task hub: a small value a host keeps with the
	// hub rather than with any instance, such as the keys it generated. When the setting does not
	// exist and init is not nil, Setting stores init first; of callers racing to do so, on one
	// node or several, all get the value that was stored first. With init nil, a missing setting
	// is nil and no error. Purges never delete settings.
	Setting(ctx context.Context, name string, init []byte) ([]byte, error)

	// Close releases the store's resources. Pending calls fail with ErrClosed.
	Close() error
}
