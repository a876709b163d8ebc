package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNewerSchema means the database was written by a newer Reprise whose schema this build does
// not know; opening it could corrupt data, so Open refuses.
var ErrNewerSchema = errors.New("sqlite: database schema is newer than this build of reprise supports")

// migrations[i] takes the schema from version i to i+1. Append only: a released migration is
// never edited, because databases in the field have already applied it.
var migrations = []string{
	// 1: the initial schema. Every table is keyed by hub, so one file holds many task hubs.
	// Unleased rows have lease_owner NULL, lease_token 0 and lease_expires 0; times are unix
	// nanoseconds, 0 meaning "none" (a message visible at once).
	`
CREATE TABLE instances (
	hub           TEXT    NOT NULL,
	id            TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	execution_id  TEXT    NOT NULL,
	parent_id     TEXT    NOT NULL,
	status        INTEGER NOT NULL,
	input         BLOB,
	output        BLOB,
	custom_status BLOB,
	failure       BLOB,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	history_len   INTEGER NOT NULL DEFAULT 0,
	lease_owner   TEXT,
	lease_token   INTEGER NOT NULL DEFAULT 0,
	lease_expires INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (hub, id)
);
CREATE INDEX instances_by_created ON instances (hub, created_at, id);
-- Partial: only leased rows, so renewing and releasing a node's leases stays cheap without
-- taxing every write.
CREATE INDEX instances_by_lease_owner ON instances (hub, lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE history (
	hub         TEXT    NOT NULL,
	instance_id TEXT    NOT NULL,
	idx         INTEGER NOT NULL,
	data        BLOB    NOT NULL,
	PRIMARY KEY (hub, instance_id, idx)
);

-- AUTOINCREMENT: message IDs are never reused, so a stale reference can never hit a newer message.
CREATE TABLE inbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	hub          TEXT    NOT NULL,
	instance_id  TEXT    NOT NULL,
	execution_id TEXT    NOT NULL,
	data         BLOB    NOT NULL,
	visible_at   INTEGER NOT NULL
);
CREATE INDEX inbox_by_instance ON inbox (hub, instance_id, id);
-- Claims scan this in visible_at order and stop at the limit; future timers are never read.
CREATE INDEX inbox_by_visible ON inbox (hub, visible_at);

CREATE TABLE tasks (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	hub           TEXT    NOT NULL,
	instance_id   TEXT    NOT NULL,
	execution_id  TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	data          BLOB    NOT NULL,
	lease_owner   TEXT,
	lease_token   INTEGER NOT NULL DEFAULT 0,
	lease_expires INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_by_ready ON tasks (hub, lease_expires, id);
CREATE INDEX tasks_by_instance ON tasks (hub, instance_id);
CREATE INDEX tasks_by_lease_owner ON tasks (hub, lease_owner) WHERE lease_owner IS NOT NULL;
`,
	// 2: settings of a hub (store.Store.Setting), such as the keys a host generated.
	`
CREATE TABLE settings (
	hub   TEXT NOT NULL,
	name  TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (hub, name)
);
`,
	// 3: claims by name. A claimer takes only the orchestrators and activities it lists, so the
	// indexes claims walk lead with the name: a claim goes straight to its own names' work and
	// never reads work waiting for other names (another app's, on a shared file). The inbox
	// keeps its instance's orchestrator name for that (names never change for an instance; a
	// replaced instance's messages are deleted with it). Names compare NOCASE, as Query.Name.
	//
	// inbox_by_visible served the claims and NextVisibleAt; only NextVisibleAt needs a time order
	// now, and only of timers (messages visible at once have visible_at 0), so a partial index of
	// timers replaces it and a message that is not a timer costs no more index writes than before.
	`
ALTER TABLE inbox ADD COLUMN instance_name TEXT NOT NULL DEFAULT '' COLLATE NOCASE;
UPDATE inbox SET instance_name = coalesce(
	(SELECT i.name FROM instances i WHERE i.hub = inbox.hub AND i.id = inbox.instance_id), '');
CREATE INDEX inbox_by_name ON inbox (hub, instance_name, visible_at);
DROP INDEX inbox_by_visible;
CREATE INDEX inbox_timers ON inbox (hub, visible_at) WHERE visible_at > 0;
DROP INDEX tasks_by_ready;
CREATE INDEX tasks_by_name ON tasks (hub, name COLLATE NOCASE, lease_expires, id);
`,
	// 4: the orchestration version and the tags that the Durable Task SDKs send. Tags are a
	// JSON object, NULL when there are none. Instances from before have neither.
	`
ALTER TABLE instances ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN tags TEXT;
`,
	// 5: durable entities. An instance has a kind (0 orchestration, 1 entity), set when it is
	// created; every row from before is an orchestration. Each message keeps its instance's kind
	// beside its name, and the index claims walk leads with the kind, so that a claim of
	// orchestrations never reads entity messages, nor one of entities orchestration messages,
	// even when an orchestrator and an entity share a name.
	`
ALTER TABLE instances ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbox_by_kind_name ON inbox (hub, kind, instance_name, visible_at);
DROP INDEX inbox_by_name;
`,
	// 6: retention. Purges of the instances that finished before a time walk this index by status
	// and finish time. It is partial, of finished orchestrations only: the commits of running
	// instances, which change updated_at every time, match it neither before nor after and write
	// nothing to it; an instance enters it once, when it finishes.
	`
CREATE INDEX instances_finished ON instances (hub, status, updated_at) WHERE kind = 0 AND status IN (1, 3, 4, 5);
`,
}

// migrate brings the schema up to date in one immediate transaction, so two processes opening
// the same new file cannot both apply a migration.
func migrate(ctx context.Context, conn *sql.Conn) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_version: %w", err)
	}
	var version int
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("%w: the file has version %d, this build knows up to %d; upgrade reprise or use another file",
			ErrNewerSchema, version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("sqlite: migrate schema to version %d: %w", v+1, err)
		}
	}
	if version < len(migrations) {
		if _, err := conn.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("sqlite: record schema version: %w", err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, len(migrations)); err != nil {
			return fmt.Errorf("sqlite: record schema version: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: commit migration: %w", err)
	}
	return nil
}
