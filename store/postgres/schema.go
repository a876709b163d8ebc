package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNewerSchema means the database was migrated by a newer Reprise whose schema this build does
// not know; running on it could corrupt data, so Open refuses.
var ErrNewerSchema = errors.New("postgres: database schema is newer than this build of reprise supports")

// migrationLock is the pg_advisory_xact_lock key that serializes migrations: several hosts
// starting at once on a fresh database would otherwise race to create the same tables. It is
// the ASCII of "reprise" followed by a version byte, so it is unlikely to clash with another
// application's advisory locks in the same database.
const migrationLock int64 = 0x7265707269736501

// migrations[i] takes the schema from version i to i+1. Append only: a released migration is
// never edited, because databases in the field have already applied it.
//
// Everything lives in the schema "reprise", keyed by hub, so one database holds many task hubs and
// shares nothing with the application's own tables.
var migrations = []string{
	// 1: the initial schema.
	`
-- Lease tokens are unique per claim across every host sharing the database; epochs are unique per
-- incarnation of a lease owner (see hosts).
CREATE SEQUENCE reprise.lease_tokens;
CREATE SEQUENCE reprise.host_epochs;

-- Liveness of lease owners. A lease on an instance or a task is (owner, epoch, token, expiry) on
-- its row. It is live while its owner's row here has the same epoch, until the later of its own
-- expiry (set by the claim) and the owner's (set by RenewLeases). So renewing every lease of a
-- host is one row update, releasing them is one row delete, and a restarted host (a new epoch)
-- drops its previous incarnation's leases at once; claims never write here, except the first of
-- an epoch. renewed marks hosts that announce themselves through RenewLeases; only those attract
-- sticky routing. announced is when the epoch started or the host last renewed: rows quiet for
-- a day are deleted.
CREATE TABLE reprise.hosts (
	hub       text COLLATE "C" NOT NULL,
	owner     text COLLATE "C" NOT NULL,
	epoch     bigint      NOT NULL,
	expires   timestamptz NOT NULL,
	renewed   boolean     NOT NULL,
	announced timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (hub, owner)
);

-- IDs are COLLATE "C" so that ordering and prefixes are bytewise, as Go compares strings,
-- whatever the database's collation.
--
-- history_len counts the chunks of the current execution; history_next numbers the next chunk
-- and only grows (see episodeSQL). lease_owner is NULL when no claim holds the row. commit_id is drawn (from lease_tokens) by the
-- transaction that committed the instance's last episode: the statements of a group commit that
-- follow the fenced update test it, so they apply only the parts of the episodes that passed
-- their fence in this very transaction. sticky_owner is the owner that committed the last
-- episode (sticky routing).
--
-- No index covers the lease, commit or sticky columns, so claims and most commits are HOT
-- updates (no index writes); fillfactor leaves room on each page for the new row versions.
CREATE TABLE reprise.instances (
	hub           text COLLATE "C" NOT NULL,
	id            text COLLATE "C" NOT NULL,
	name          text        NOT NULL,
	execution_id  text        NOT NULL,
	parent_id     text        NOT NULL,
	status        smallint    NOT NULL,
	input         bytea,
	output        bytea,
	custom_status bytea,
	failure       bytea,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	history_len   integer     NOT NULL DEFAULT 0,
	history_next  integer     NOT NULL DEFAULT 0,
	lease_owner   text COLLATE "C",
	lease_epoch   bigint      NOT NULL DEFAULT 0,
	lease_token   bigint      NOT NULL DEFAULT 0,
	lease_expires timestamptz NOT NULL DEFAULT '-infinity',
	commit_id     bigint      NOT NULL DEFAULT 0,
	sticky_owner  text COLLATE "C",
	PRIMARY KEY (hub, id)
) WITH (fillfactor = 80);
-- Listing and paging order; purges by creation range.
CREATE INDEX instances_by_created ON reprise.instances (hub, created_at, id);
-- Listing and purging by status: with millions of finished instances, "the Running ones" must
-- not scan the finished.
CREATE INDEX instances_by_status ON reprise.instances (hub, status, created_at);

CREATE TABLE reprise.history (
	hub         text COLLATE "C" NOT NULL,
	instance_id text COLLATE "C" NOT NULL,
	idx         integer NOT NULL,
	data        bytea   NOT NULL,
	PRIMARY KEY (hub, instance_id, idx)
);

-- The inbox holds only messages not yet consumed: its size is the backlog of work plus pending
-- timers, whatever the number of finished instances. Claims walk inbox_by_visible from the
-- oldest visible message and stop at their limit, so timers in the future are never read. (A
-- partial index cannot single out the visible messages: visibility moves with the clock.)
CREATE TABLE reprise.inbox (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hub          text COLLATE "C" NOT NULL,
	instance_id  text COLLATE "C" NOT NULL,
	execution_id text        NOT NULL,
	data         bytea       NOT NULL,
	visible_at   timestamptz NOT NULL
);
CREATE INDEX inbox_by_visible ON reprise.inbox (hub, visible_at, id);
CREATE INDEX inbox_by_instance ON reprise.inbox (hub, instance_id, id);

-- Tasks are deleted when completed, so the table holds only pending and running ones. The two
-- partial indexes split them: claims take unleased tasks from tasks_unleased in ID order and
-- look at leased ones (tasks_leased, to find those of dead owners) only when that runs dry.
-- (Migration 2 replaces tasks_unleased with tasks_unleased_by_name.)
CREATE TABLE reprise.tasks (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hub          text COLLATE "C" NOT NULL,
	instance_id  text COLLATE "C" NOT NULL,
	execution_id text   NOT NULL,
	name         text   NOT NULL,
	data         bytea  NOT NULL,
	lease_owner   text COLLATE "C",
	lease_epoch   bigint NOT NULL DEFAULT 0,
	lease_token   bigint NOT NULL DEFAULT 0,
	lease_expires timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX tasks_unleased ON reprise.tasks (hub, id) WHERE lease_owner IS NULL;
CREATE INDEX tasks_leased ON reprise.tasks (hub, id) WHERE lease_owner IS NOT NULL;
CREATE INDEX tasks_by_instance ON reprise.tasks (hub, instance_id);
`,
	// 2: settings of a hub (store.Store.Setting), such as the keys a host generated.
	`
CREATE TABLE reprise.settings (
	hub   text COLLATE "C" NOT NULL,
	name  text COLLATE "C" NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (hub, name)
);
`,
	// 3: claims by name. A claimer takes only the orchestrators and activities it lists, so the
	// indexes claims walk lead with the name: a claim seeks each of its names and never reads work
	// waiting for other names. Each message keeps its instance's orchestrator name for that (an
	// instance's name never changes; a replaced instance's messages are deleted with it).
	// lower() as everywhere names are compared.
	`
ALTER TABLE reprise.inbox ADD COLUMN instance_name text NOT NULL DEFAULT '';
UPDATE reprise.inbox m SET instance_name = i.name FROM reprise.instances i WHERE i.hub = m.hub AND i.id = m.instance_id;
CREATE INDEX inbox_by_name ON reprise.inbox (hub, lower(instance_name), visible_at, id);
CREATE INDEX tasks_unleased_by_name ON reprise.tasks (hub, lower(name), id) WHERE lease_owner IS NULL;
DROP INDEX reprise.tasks_unleased;
`,
	// 4: the orchestration version and the tags that the Durable Task SDKs send. Tags are a
	// JSON object as text, NULL when there are none. Neither is indexed, so commits stay HOT
	// updates; adding columns with constant defaults rewrites no rows.
	`
ALTER TABLE reprise.instances ADD COLUMN version text NOT NULL DEFAULT '';
ALTER TABLE reprise.instances ADD COLUMN tags text;
`,
	// 5: durable entities. An instance has a kind (0 orchestration, 1 entity), set when it is
	// created; every row from before is an orchestration. The instances' kind is not indexed, so
	// commits stay HOT updates. Each message keeps its instance's kind beside its name, and the
	// index claims walk leads with the kind, so that a claim of orchestrations never reads entity
	// messages, nor one of entities orchestration messages, even when an orchestrator and an
	// entity share a name.
	`
ALTER TABLE reprise.instances ADD COLUMN kind smallint NOT NULL DEFAULT 0;
ALTER TABLE reprise.inbox ADD COLUMN kind smallint NOT NULL DEFAULT 0;
CREATE INDEX inbox_by_kind_name ON reprise.inbox (hub, kind, lower(instance_name), visible_at, id);
DROP INDEX reprise.inbox_by_name;
`,
}

// migrate brings the schema up to date. The advisory lock makes concurrent Opens of a fresh
// database take turns: the first creates everything, the others find it done.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin migration: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: lock for migration: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS reprise`); err != nil {
		return fmt.Errorf("postgres: create schema reprise (does the user have the CREATE privilege on the database?): %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS reprise.schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: create reprise.schema_version: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM reprise.schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: the database has version %d, this build knows up to %d; upgrade reprise on this host or use another database",
			ErrNewerSchema, version, len(migrations))
	}
	if version == len(migrations) {
		return nil // the deferred rollback only ends the transaction and its lock
	}
	for v := version; v < len(migrations); v++ {
		// No arguments: pgx sends it with the simple protocol, which allows several statements.
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("postgres: migrate schema to version %d: %w", v+1, err)
		}
	}
	batch := &pgx.Batch{}
	batch.Queue(`DELETE FROM reprise.schema_version`)
	batch.Queue(`INSERT INTO reprise.schema_version (version) VALUES ($1)`, len(migrations))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("postgres: record schema version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit migration: %w", err)
	}
	return nil
}
