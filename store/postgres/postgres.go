package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/reprise-dev/reprise/internal/notify"
	"github.com/reprise-dev/reprise/internal/txobserve"
	"github.com/reprise-dev/reprise/store"
)

var _ store.Store = (*Store)(nil)

// Options configure Open. The zero value is a good default.
type Options struct {
	// Hub is the task hub the store is bound to; "" means "default". Hubs share the database and
	// never see each other's data.
	Hub string
	// MaxConns caps the connection pool; 0 means max(8, 4*GOMAXPROCS). The notification listener
	// uses one more connection of its own.
	MaxConns int32
	// StatementTimeout is set as the statement_timeout of every pooled connection, so that a
	// stuck query fails instead of holding a connection forever; 0 means 30s, negative means no
	// limit (or whatever the DSN sets).
	StatementTimeout time.Duration
	// MaxBatch caps how many queued commits (episodes, activity completions, creates, messages)
	// share one transaction; 0 means 128, 1 disables group commit.
	MaxBatch int
	// Writers is how many group-commit transactions run at once; 0 means 2. One writer leaves
	// the database idle while its transaction travels; a few keep it busy.
	Writers int
	// Logger receives the notification listener's connection problems; nil discards them.
	Logger *slog.Logger
}

// Store is a task hub in a PostgreSQL database. It is safe for concurrent use, and any number of
// Stores in any number of processes may share the database and the hub.
type Store struct {
	hub      string
	pool     *pgxpool.Pool
	listenDB *pgx.ConnConfig // the listener's own connection settings
	channel  string          // the hub's LISTEN/NOTIFY channel
	notifier *notify.Notifier
	log      *slog.Logger
	maxBatch int

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan *writeOp
	quit   chan struct{}
	stop   context.CancelFunc // stops the listener and statsKeeper
	wg     sync.WaitGroup     // writers, listener and statsKeeper

	announceMu   sync.Mutex    // serializes the announcements that start an epoch (see ownerEpoch)
	recoverAfter atomic.Int64  // unix nanoseconds: when task claims look for dead leases next
	orchTurn     atomic.Uint64 // rotates the name a claim starts from (see rotate), one per kind
	entTurn      atomic.Uint64
	taskTurn     atomic.Uint64
	// The same for claims of every name but some (see turn), whose dispatchers may run beside
	// the others: two dispatchers claiming in alternation on one turn could each always land on
	// the same name.
	orchExceptTurn, entExceptTurn, taskExceptTurn atomic.Uint64

	observers txobserve.Set // ObserveTransactions

	ownersMu sync.Mutex
	// owners maps each lease owner that claimed or renewed through this store to the epoch of
	// its hosts row (0 until known, and again after ReleaseLeases). Its keys are the local owners
	// whose sticky notifications concern this process.
	owners map[string]int64

	pidsMu sync.Mutex
	pids   map[uint32]struct{} // backend PIDs of the pool, whose notifications were signalled locally

	watchMu sync.Mutex
	watched map[string]int // instance ID -> live watches, to fire them all after a listener outage
}

// Open connects to the database at dsn (a postgres:// URL or key=value string), brings the
// reprise schema up to date and binds the store to opts.Hub. It fails with ErrNewerSchema for a
// database migrated by a newer build.
//
// The store's connections run with enable_seqscan=off, jit=off and
// plan_cache_mode=force_generic_plan (see the comment in Open), and need the CREATE privilege on
// the database for the first Open, which creates the schema.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Hub == "" {
		opts.Hub = "default"
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = 30 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 128
	}
	if opts.Writers <= 0 {
		opts.Writers = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("postgres: invalid DSN: %w; write it as postgres://user@host:5432/database or as host=HOST dbname=DATABASE", err)
	}
	cfg.MaxConns = opts.MaxConns
	rp := cfg.ConnConfig.RuntimeParams
	if opts.StatementTimeout > 0 {
		rp["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	if rp["application_name"] == "" {
		rp["application_name"] = "reprise"
	}
	// Every statement of the store is a keyed lookup or an ordered index walk, and must stay one
	// however small or fresh the tables' statistics make them look: PostgreSQL caches the plan of
	// a prepared statement, and a sequential scan chosen while a table was small would be kept
	// as it grows. So sequential scans are priced out on the store's connections (they remain
	// possible where no index applies), and JIT compilation, which never pays for statements this
	// short and would be set off by the price, is off. Plans are generic, made once per
	// connection: planning each execution anew would cost more than many of the statements
	// themselves; statsKeeper renews the statistics, which replans, while the tables grow.
	rp["enable_seqscan"] = "off"
	rp["jit"] = "off"
	rp["plan_cache_mode"] = "force_generic_plan"
	listenCfg := cfg.ConnConfig.Copy()
	listenCfg.RuntimeParams["application_name"] = rp["application_name"] + "-listener"
	delete(listenCfg.RuntimeParams, "statement_timeout") // waiting for notifications is no statement

	s := &Store{
		hub:      opts.Hub,
		listenDB: listenCfg,
		channel:  channelName(opts.Hub),
		notifier: notify.New(),
		log:      opts.Logger,
		maxBatch: opts.MaxBatch,
		queue:    make(chan *writeOp, 4*opts.MaxBatch*opts.Writers),
		quit:     make(chan struct{}),
		owners:   make(map[string]int64),
		pids:     make(map[uint32]struct{}),
		watched:  make(map[string]int),
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		s.pidsMu.Lock()
		s.pids[c.PgConn().PID()] = struct{}{}
		s.pidsMu.Unlock()
		return nil
	}
	cfg.BeforeClose = func(c *pgx.Conn) {
		s.pidsMu.Lock()
		delete(s.pids, c.PgConn().PID())
		s.pidsMu.Unlock()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(cfg.ConnConfig, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(cfg.ConnConfig, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s.pool = pool
	lconn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open the notification listener's connection: %w", err)
	}

	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(2 + opts.Writers)
	go s.listen(lctx, lconn)
	go s.statsKeeper(lctx)
	for range opts.Writers {
		go s.writeLoop()
	}
	return s, nil
}

// connectError names where the store tried to connect (never the password) and what to check.
func connectError(cfg *pgx.ConnConfig, err error) error {
	return fmt.Errorf("postgres: cannot connect to %s:%d, database %q, as user %q: %w; check that PostgreSQL runs there and accepts the connection, and the DSN",
		cfg.Host, cfg.Port, cfg.Database, cfg.User, err)
}

// channelName is the hub's notification channel. Hub names may be long or contain anything, and
// channel names are identifiers of at most 63 bytes, so the channel is named by a hash; another
// hub with a colliding hash would only cause spurious wake-ups.
func channelName(hub string) string {
	sum := sha256.Sum256([]byte(hub))
	return "reprise_" + hex.EncodeToString(sum[:12])
}

// Hub returns the task hub the store is bound to.
func (s *Store) Hub() string { return s.hub }

// String names the store for logs, without credentials: "postgres:" and the server and database.
func (s *Store) String() string {
	return fmt.Sprintf("postgres:%s:%d/%s", s.listenDB.Host, s.listenDB.Port, s.listenDB.Database)
}

// WorkSignal returns the wake-up channel of kind; see store.Store. It fires after commits in this
// process and on notifications from other hosts.
func (s *Store) WorkSignal(kind store.WorkKind) <-chan struct{} { return s.notifier.Signal(kind) }

// WatchInstance returns a channel closed after the next committed change to the instance, by
// this process or another host.
func (s *Store) WatchInstance(id string) (<-chan struct{}, func()) {
	s.watchMu.Lock()
	s.watched[id]++
	s.watchMu.Unlock()
	ch, stop := s.notifier.Watch(id)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			stop()
			s.watchMu.Lock()
			if s.watched[id]--; s.watched[id] <= 0 {
				delete(s.watched, id)
			}
			s.watchMu.Unlock()
		})
	}
}

// Close stops the listener, waits for the transactions in progress, fails queued writes with
// store.ErrClosed and closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	s.stop()
	s.wg.Wait()
	s.notifier.Close()
	s.pool.Close()
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// errClosed is store.ErrClosed with the operation's name.
func errClosed(what string) error { return fmt.Errorf("postgres: %s: %w", what, store.ErrClosed) }

// dbErr wraps a database failure, as store.ErrClosed when the store was closed under it.
func (s *Store) dbErr(what string, err error) error {
	if s.isClosed() && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("postgres: %s: %w (%v)", what, store.ErrClosed, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// micros is a duration as whole microseconds, the resolution of PostgreSQL's timestamps.
func micros(d time.Duration) int64 { return d.Microseconds() }
