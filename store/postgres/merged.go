package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/reprise-dev/reprise/store"
)

// Merged completions (store.Completion): an episode that completes an activity task, computed
// by the node that ran the task without a claim of the instance.
//
// A merged completion is an episode like any other to the writer (one write of its group, not
// a claim), with one statement more before episodeSQL, mergeSQL, which does what a claim would
// have done: it takes the instance, under a lease of the task's owner and token, if the task's
// lease holds and the instance is free, and deletes the task. The episode then commits under
// that lease through episodeSQL, as if claimed: the same fence, history, messages, starts,
// tasks (leased ones included), wake-ups and release of the lease. The lease lives and dies in
// the one transaction, under the row lock mergeSQL took, so nobody else ever sees it.
//
// The lease's token is the task's: every token comes from one sequence, and an instance claim
// draws its own, so no claim of the instance can ever carry it, and the fence tells this lease
// from any other. Its epoch is the one of the task's lease, which episodeSQL gives the tasks
// that the episode leases (LeaseTasks): they live, like the task they follow, while the
// incarnation of the owner that claimed the first task of the chain does, and die with its
// other leases when it restarts or calls ReleaseLeases (which deletes its hosts row). A
// completion under a lease already dead that way still commits, as CompleteActivity still
// delivers, but the tasks it leases are dead at birth, and claimable at once by anyone.

// mergeSQL takes the instances of the group's merged completions and completes their tasks.
// For each completion (its episode's instance $2, task $3, the task's lease $4 and $5, and the
// execution seen, $6 and $7), it locks the task if its lease still holds, then the instance
// if the task is the instance's and the instance is free: an orchestration, at the execution and
// history length given, without an unexpired lease and without a visible message. It leases
// the instance it took to the task's owner (see above) and deletes the task; a completion
// refused for any reason changes nothing. It returns, for each, the instance of the task it
// found (NULL: the lease was lost) and whether it took the instance.
//
// The instance is locked SKIP LOCKED: a row another transaction holds is being claimed,
// committed or replaced, so the completion would find the instance busy, or moved on, anyway.
// The conditions on the instance are checked on the row it locked, which is the latest
// version even when a transaction committed it after this statement's snapshot (READ
// COMMITTED rechecks a locked row), and with no other table, so that no stale snapshot can make
// a live lease look dead: a lease counts until its expiry, even when its owner's epoch ended
// before (ReleaseLeases). That is stricter than a claim, and costs nothing in practice: an
// instance leased by a claim has visible messages until the claimer commits, which releases the
// lease. A message committed after the snapshot is not seen; it is the message a claim would
// also have found just after, and episodeSQL's pending check wakes the dispatcher for it.
const mergeSQL = `
WITH c AS (
	SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::integer[])
		AS c(id, task_id, owner, token, execution_id, history_len)
),
task AS MATERIALIZED (
	SELECT c.id, t.id AS task_id, t.instance_id, t.lease_epoch
	FROM c JOIN reprise.tasks t ON t.id = c.task_id
	WHERE t.hub = $1 AND t.lease_owner = c.owner AND t.lease_token = c.token
	ORDER BY t.id
	FOR UPDATE OF t
),
free AS MATERIALIZED (
	SELECT i.id
	FROM task JOIN c ON c.id = task.id JOIN reprise.instances i ON i.hub = $1 AND i.id = c.id
	WHERE task.instance_id = c.id AND i.kind = 0
		AND i.execution_id = c.execution_id AND i.history_len = c.history_len
		AND (i.lease_owner IS NULL OR i.lease_expires <= now())
		AND NOT EXISTS (SELECT 1 FROM reprise.inbox m WHERE m.hub = $1 AND m.instance_id = i.id AND m.visible_at <= now())
	ORDER BY i.id
	FOR NO KEY UPDATE OF i SKIP LOCKED
),
taken AS (
	UPDATE reprise.instances i SET lease_owner = c.owner, lease_epoch = task.lease_epoch, lease_token = c.token,
		lease_expires = now()
	FROM free JOIN c ON c.id = free.id JOIN task ON task.id = free.id
	WHERE i.hub = $1 AND i.id = free.id
	RETURNING i.id
),
done AS (
	DELETE FROM reprise.tasks t USING taken JOIN task ON task.id = taken.id
	WHERE t.id = task.task_id AND t.hub = $1
)
SELECT c.id, task.instance_id, taken.id IS NOT NULL
FROM c LEFT JOIN task ON task.id = c.id LEFT JOIN taken ON taken.id = c.id`

// queueMerges queues mergeSQL for the merged completions among a group's episodes (ops), before
// episodeSQL commits them. A completion refused here gets its error; one that took its instance
// keeps the error that episodeSQL's reader clears once the episode committed.
func (g *group) queueMerges(ops []*writeOp) {
	if len(ops) == 0 {
		return
	}
	n := len(ops)
	ids, owners, execs := make([]string, n), make([]string, n), make([]string, n)
	taskIDs, tokens := make([]int64, n), make([]int64, n)
	lens := make([]int32, n)
	byID := make(map[string]*writeOp, n)
	for i, o := range ops {
		c := o.ep.Completes
		ids[i], taskIDs[i], owners[i], tokens[i] = o.ep.Instance.ID, c.TaskID, c.Lease.Owner, c.Lease.Token
		execs[i], lens[i] = c.ExecutionID, int32(c.HistoryLen)
		byID[ids[i]] = o
	}
	g.queue(mergeSQL, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var of *string
			var taken bool
			if err := rows.Scan(&id, &of, &taken); err != nil {
				return err
			}
			o := byID[id]
			c := o.ep.Completes
			switch {
			case of == nil:
				o.err = fmt.Errorf("postgres: commit episode of %q completing activity task %d: %w (completed already, claimed again, or its instance was replaced or purged); drop this episode",
					id, c.TaskID, store.ErrLeaseLost)
			case *of != id:
				o.err = fmt.Errorf("postgres: commit episode of %q completing activity task %d: %w: the task is instance %q's; complete it with CompleteActivity",
					id, c.TaskID, store.ErrInvalidArgument, *of)
			case !taken:
				o.err = fmt.Errorf("postgres: commit episode of %q completing activity task %d: %w (leased, moved on from execution %q at history length %d, or with messages waiting); complete the task with CompleteActivity",
					id, c.TaskID, store.ErrInstanceBusy, c.ExecutionID, c.HistoryLen)
			}
		}
		return rows.Err()
	}, g.s.hub, ids, taskIDs, owners, tokens, execs, lens)
}

// committer is the lease an episode commits under: its claim's, or for a merged completion the
// lease mergeSQL gives the instance, which is the task's.
func committer(e *store.Episode) store.Lease {
	if c := e.Completes; c != nil {
		return c.Lease
	}
	return e.Lease
}
