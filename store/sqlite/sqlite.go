// Package sqlite is the embedded SQLite implementation of store.Store, Reprise's default store.
//
// One file holds any number of task hubs. The file is opened in WAL mode; by default every
// acknowledged write is on disk (synchronous=FULL), so it survives a crash or power loss. The
// exception is a transaction that writes only leases (claims, renewals): it is synced with the
// next commit, since a crash that could undo it also ends every holder of those leases.
//
// All writes go through a single writer goroutine that applies the operations queued since its
// last transaction in one transaction (group commit), each in its own savepoint so that one
// failing operation does not fail the others. Because an fsync, not the CPU, bounds how many
// transactions a disk can take per second, batching is what makes the store fast. Reads use a
// separate pool of connections, which WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/reprise-dev/reprise/internal/notify"
	"github.com/reprise-dev/reprise/internal/txobserve"
	"github.com/reprise-dev/reprise/store"
)

var _ store.Store = (*Store)(nil)

// Durability says when a write counts as done.
type Durability int

const (
	// DurabilityFull (the default) syncs the write-ahead log on every commit: an acknowledged
	// write survives a crash of the process or of the machine. (Lease writes alone, claims
	// and renewals, are synced with the next commit: a machine crash may undo them, and also
	// ends their holders; see writer.setSync.)
	DurabilityFull Durability = iota
	// DurabilityRelaxed (synchronous=NORMAL) syncs only at checkpoints. It is faster, and an
	// acknowledged write survives a crash of the process, but a power loss or OS crash can lose
	// the most recent commits. Opt in only when that loss is acceptable.
	DurabilityRelaxed
)

func (d Durability) pragma() (string, error) {
	switch d {
	case DurabilityFull:
		return "synchronous(FULL)", nil
	case DurabilityRelaxed:
		return "synchronous(NORMAL)", nil
	}
	return "", fmt.Errorf("sqlite: unknown durability %d: use DurabilityFull or DurabilityRelaxed", int(d))
}

// Options configure Open. The zero value is a good default.
type Options struct {
	// Hub is the task hub the store is bound to; "" means "default".
	Hub string
	// Durability defaults to DurabilityFull.
	Durability Durability
	// BusyTimeout is how long a statement waits for a lock held by another process; 0 means 10s.
	BusyTimeout time.Duration
	// MaxBatch caps how many queued write operations share one transaction; 0 means 256.
	MaxBatch int
	// ReadConns is the size of the read connection pool; 0 means 4.
	ReadConns int
	// Now is the clock that decides when messages become visible and leases expire, and the
	// times the store stamps; nil means time.Now. It is for test harnesses with a virtual clock
	// (package reprisetest); production leaves it unset. Lease tokens always come from real
	// time, so that they keep growing across restarts.
	Now func() time.Time
}

// Store is a task hub in an SQLite file. It is safe for concurrent use.
type Store struct {
	hub         string
	path        string // the file, as given to Open
	writeDB     *sql.DB
	readDB      *sql.DB
	nextVisible *sql.Stmt // on readDB, like getInstance and history
	getInstance *sql.Stmt
	history     *sql.Stmt
	notifier    *notify.Notifier
	maxBatch    int
	now         func() time.Time // Options.Now, or time.Now

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	quit   chan struct{}
	done   chan struct{} // closed when the writer goroutine has exited

	w *writer // owned by the writer goroutine

	observers txobserve.Set // ObserveTransactions
}

// Open opens (creating if needed) the SQLite database at path, brings its schema up to date and
// binds the store to opts.Hub. It fails with ErrNewerSchema for a file written by a newer build.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path: give a file name such as reprise.db")
	}
	if opts.Hub == "" {
		opts.Hub = "default"
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	syncPragma, err := opts.Durability.pragma()
	if err != nil {
		return nil, err
	}
	busy := fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds())

	writeDB, err := sql.Open(driverName, dsn(path, []string{busy, "journal_mode(WAL)", syncPragma}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The writer holds the only write connection for the store's lifetime.
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)
	conn, err := writeDB.Conn(ctx)
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		conn.Close()
		writeDB.Close()
		return nil, err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fail(fmt.Errorf("sqlite: open %s: journal mode is %q, not WAL (is the file on a file system without shared memory?)", path, mode))
	}
	if err := migrate(ctx, conn); err != nil {
		return fail(err)
	}
	w, err := newWriter(ctx, conn, opts.Hub, opts.Durability == DurabilityFull)
	if err != nil {
		return fail(err)
	}

	readDB, err := sql.Open(driverName, dsn(path, []string{busy, "query_only(1)"}))
	if err != nil {
		w.close()
		return fail(fmt.Errorf("sqlite: open %s for reading: %w", path, err))
	}
	readDB.SetMaxOpenConns(opts.ReadConns)
	readDB.SetMaxIdleConns(opts.ReadConns)
	// The reads the engine and its waiters repeat are prepared once; database/sql prepares each
	// on a pooled connection at its first use there, and keeps it.
	var nextVisible, getInstance, history *sql.Stmt
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		// Dispatchers ask for the next timer every time they go idle.
		// visible_at > 0 lets the planner use the partial index of timers (inbox_timers).
		{&nextVisible, `SELECT min(visible_at) FROM inbox WHERE hub = ? AND visible_at > 0 AND visible_at > ?`},
		// Waiters read the instance after every change to it.
		{&getInstance, `SELECT ` + instanceColumns + ` FROM instances WHERE hub = ? AND id = ?`},
		// One statement, so existence and history come from the same snapshot: zero rows means
		// no instance, one row with NULL data means an empty history.
		{&history, `SELECT h.data FROM instances i
			LEFT JOIN history h ON h.hub = i.hub AND h.instance_id = i.id
			WHERE i.hub = ? AND i.id = ? ORDER BY h.idx`},
	} {
		st, err := readDB.PrepareContext(ctx, p.query)
		if err != nil {
			closeStmts(nextVisible, getInstance, history)
			readDB.Close()
			w.close()
			return fail(fmt.Errorf("sqlite: open %s for reading: %w", path, err))
		}
		*p.dst = st
	}

	s := &Store{
		hub:         opts.Hub,
		path:        path,
		writeDB:     writeDB,
		readDB:      readDB,
		nextVisible: nextVisible,
		getInstance: getInstance,
		history:     history,
		notifier:    notify.New(),
		maxBatch:    opts.MaxBatch,
		now:         opts.Now,
		ops:         make(chan *op, 4*opts.MaxBatch),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		w:           w,
	}
	go s.writeLoop()
	return s, nil
}

// Hub returns the task hub the store is bound to.
func (s *Store) Hub() string { return s.hub }

// String names the store for logs: "sqlite:" and the file.
func (s *Store) String() string { return "sqlite:" + s.path }

// WorkSignal returns the wake-up channel of kind; see store.Store.
func (s *Store) WorkSignal(kind store.WorkKind) <-chan struct{} { return s.notifier.Signal(kind) }

// WatchInstance returns a channel closed after the next committed change to the instance.
func (s *Store) WatchInstance(id string) (<-chan struct{}, func()) { return s.notifier.Watch(id) }

// Close waits for the transaction in progress, fails queued writes with store.ErrClosed and
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.done
	s.notifier.Close()
	err := errors.Join(s.w.close(), s.writeDB.Close(), closeStmts(s.nextVisible, s.getInstance, s.history), s.readDB.Close())
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// closeStmts closes the statements that are not nil.
func closeStmts(stmts ...*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// readErr turns a read failure into store.ErrClosed when the store was closed under it.
func (s *Store) readErr(what string, err error) error {
	if s.isClosed() {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrClosed)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// escapePath makes a file name safe inside a file: URI.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}
