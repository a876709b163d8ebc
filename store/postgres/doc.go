// Package postgres is the PostgreSQL implementation of store.Store (with pgx v5), for Reprise
// hosts that scale out: any number of hosts, in any number of processes, share one database, and
// one database holds any number of task hubs.
//
//	s, err := postgres.Open(ctx, "postgres://reprise@db:5432/reprise", postgres.Options{Hub: "orders"})
//
// Connect directly or through a pooler in session mode: the store prepares its statements and
// keeps a connection LISTENing, which a transaction-mode pooler (PgBouncer's default) breaks.
//
// # Schema
//
// Everything lives in the schema "reprise", created and migrated by Open: versioned migrations,
// applied in a transaction under pg_advisory_xact_lock, so that hosts starting at once on a fresh
// database take turns; a database migrated by a newer build is refused (ErrNewerSchema). Every
// table is keyed by hub, so hubs share the tables and never see each other's rows.
//
//   - instances: one row per instance (orchestration or entity: kind), with its lease, the ID of
//     the transaction that committed its last episode (commit_id) and the host that did
//     (sticky_owner);
//   - history: the chunks of each instance's current execution;
//   - inbox: messages not yet consumed, each visible from visible_at (timers are messages in the
//     future);
//   - tasks: activity tasks not yet completed, with their lease;
//   - hosts: the liveness of lease owners (below).
//
// Finished instances are rows in instances and history only: claims never read them, so millions
// of them cost claims nothing. A claim takes only the orchestrators or activities the claimer
// names: for each name in turn it reads the inbox (pending messages only, each carrying its
// instance's kind and name) from that name's oldest visible message of the claim's kind
// (orchestrations or entities) in index order, and the
// tasks from a partial index of unleased tasks by name, so work waiting for other names (another
// application's, sharing the hub) is never read. No index
// covers the lease columns, so claiming and most commits are HOT updates of the instance row.
// Every statement is a keyed lookup or an ordered index walk, prepared once per connection; see
// Open and statsKeeper for how they are kept so whatever the planner statistics say (the store
// analyzes its tables while they grow, and vacuums them if the server's autovacuum is off).
//
// # Claims, leases and fencing
//
// A claim locks its rows with SKIP LOCKED (FOR NO KEY UPDATE for instances, FOR UPDATE for
// tasks), so concurrent claimers on any host pass
// each other, and stamps each row with a lease: the owner, the owner's epoch, a token unique to
// the claim (a sequence), and an expiry of now+leaseFor (the database's clock, shared by all
// hosts). CommitEpisode and CompleteActivity apply only if the row still carries their owner and
// token (else store.ErrLeaseLost); a commit releases the lease.
//
// A lease is live until its own expiry, and only while its owner's hosts row has the lease's
// epoch. RenewLeases extends the leases of the claims it is given (one array update per table)
// and the owner's row; a lease the owner no longer renews expires even though the owner lives on,
// and is then claimable. ReleaseLeases is one delete (every lease of the owner dies at once), and
// a host restarted with the same owner name starts a new epoch at its first claim or renewal,
// which ends its previous incarnation's leases without waiting for them to expire. Each owner
// name must be used by one Store at a time. (The comments of migration 1 in schema.go describe
// the first lease model, in which an owner's expiry kept all its leases alive; migrations are
// never edited.)
//
// # Group commit
//
// CreateInstance, SendMessage, CommitEpisode and CompleteActivity are queued for a few writers
// (Options.Writers); each applies what has queued up, up to Options.MaxBatch operations, in one
// transaction sent as one pgx.Batch: one round trip and one WAL flush for the lot, with the
// operations of a kind merged into array statements. On this project's 2-core machine that costs
// the database 7 to 8 times less CPU per orchestration than a transaction per operation. An
// episode that lost its lease is left out without disturbing the others. synchronous_commit is
// left on: an acknowledged write is durable. See writer.go.
//
// # Notifications
//
// Wake-ups across hosts use LISTEN/NOTIFY on one channel per hub, sent by the committing
// transaction itself (so delivered exactly when it commits): "o:OWNER" for orchestration work
// ("o:" when any host may take it), "e:OWNER" likewise for entity work, "a" for activity work, "r" when a host released its leases,
// and "C" with a JSON array of the instances whose status, output or custom status changed (for
// WatchInstance on other hosts; "c*" wakes every watcher when the list is too long). PostgreSQL
// serializes committing transactions that notify, which group commit amortizes. In-process
// commits signal their own dispatchers and watchers directly, without the round trip, and a
// store ignores the notifications its own connections sent. A dedicated connection listens; when
// it breaks (a database restart) it reconnects with backoff and then wakes everything, since
// notifications sent meanwhile are lost. Until then the engine's polling finds the work.
//
// # Sticky routing
//
// The host that ran an instance's last episode has it cached; another host would have to replay
// its history. So a commit records its owner as the instance's sticky owner, and a claim by any
// other owner skips an instance whose sticky owner is alive, that is whose hosts row was renewed
// (RenewLeases, which the engine calls every third of the lease duration) and has not expired.
// It takes the instance once that host stops renewing (its liveness expired) or leaves
// (ReleaseLeases deletes its row). A host that has never called RenewLeases attracts no sticky
// routing: it may be a client or a one-off worker, and the engine renews within a third of its
// lease duration of starting. Notifications of work for a sticky instance are addressed to its
// owner ("o:OWNER"), so other hosts do not wake up for work they could not claim.
package postgres
