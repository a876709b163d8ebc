package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reprise-dev/reprise/store"
)

// Notification payloads, sent with pg_notify on the hub's channel by the transaction that made
// them true, so they are delivered when (and only if) it commits:
//
//	o:OWNER   orchestration work for an instance sticky to OWNER; "o:" is work for anyone
//	e:OWNER   entity work, likewise
//	a         activity work
//	r         leases released (a host leaving): activity work, and dead leases to look for
//	C["id",…] changes to instances (status, output, custom status): a JSON array of their IDs
//	c*        changes to instances beyond counting (a purge, or too many IDs for one payload)
//
// A transaction sends each distinct payload once, and the changes of a group commit share one.
const (
	payloadOrchestration = "o:"
	payloadEntity        = "e:"
	payloadActivity      = "a"
	payloadReleased      = "r"
	payloadChanged       = "C"
	payloadAllChanged    = "c*"
)

// changedSQL is an SQL expression that notifies channel ch (an SQL expression) of the instance IDs
// that query q returns, in one payload. Payloads are limited to 8000 bytes; a longer list wakes
// every watcher instead.
func changedSQL(ch, q string) string {
	return `(SELECT count(pg_notify(` + ch + `, CASE WHEN octet_length(j) < 7900 THEN 'C' || j ELSE 'c*' END))
	FROM (SELECT json_agg(x.id)::text AS j FROM (` + q + `) x(id)) n WHERE j IS NOT NULL)`
}

// listen keeps a dedicated connection LISTENing on the hub's channel and turns notifications into
// local wake-ups. When the connection breaks (the database restarted, a network cut) it
// reconnects with backoff; meanwhile the engine's polling finds the work, and once back it wakes
// every dispatcher and watcher, since notifications sent in between are lost.
//
// The first connection is made by Open (conn), so that a store is listening once Open returns.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer s.wg.Done()
	defer func() {
		if conn != nil { // connected just as the store closed
			conn.Close(context.Background())
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if conn != nil {
			c := conn
			conn = nil
			err = s.serve(ctx, c)
		} else {
			conn, err = s.connectListener(ctx)
			if err == nil {
				backoff = 100 * time.Millisecond
				// Notifications sent while the listener was away are lost: wake everyone to look.
				s.wakeAll()
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: notification listener lost its connection; polling meanwhile", "hub", s.hub, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// connectListener opens the listener's connection and LISTENs on the hub's channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.listenDB)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// serve dispatches the notifications conn receives until it fails, and closes it.
func (s *Store) serve(ctx context.Context, conn *pgx.Conn) error {
	defer conn.Close(context.Background())
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.dispatch(n)
	}
}

// dispatch turns one notification into local wake-ups.
func (s *Store) dispatch(n *pgconn.Notification) {
	s.pidsMu.Lock()
	_, own := s.pids[n.PID]
	s.pidsMu.Unlock()
	if own {
		return // sent by this store, which signalled at commit already
	}
	p := n.Payload
	switch {
	case p == payloadActivity:
		s.notifier.Notify(store.ActivityWorkKind)
	case p == payloadReleased:
		s.recoverAfter.Store(0)
		s.notifier.Notify(store.ActivityWorkKind)
	case strings.HasPrefix(p, payloadOrchestration):
		if owner := p[len(payloadOrchestration):]; owner == "" || s.isLocalOwner(owner) {
			s.notifier.Notify(store.OrchestrationWorkKind)
		}
	case strings.HasPrefix(p, payloadEntity):
		if owner := p[len(payloadEntity):]; owner == "" || s.isLocalOwner(owner) {
			s.notifier.Notify(store.EntityWorkKind)
		}
	case p == payloadAllChanged:
		s.fireAllWatches()
	case strings.HasPrefix(p, payloadChanged):
		var ids []string
		if err := json.Unmarshal([]byte(p[len(payloadChanged):]), &ids); err != nil {
			s.fireAllWatches() // not ours to judge: better a spurious wake-up than a missed one
			return
		}
		for _, id := range ids {
			s.notifier.Changed(id)
		}
	}
}

// wakeAll wakes every dispatcher and watcher, after notifications may have been lost.
func (s *Store) wakeAll() {
	s.recoverAfter.Store(0)
	s.notifier.Notify(store.OrchestrationWorkKind)
	s.notifier.Notify(store.ActivityWorkKind)
	s.notifier.Notify(store.EntityWorkKind)
	s.fireAllWatches()
}

func (s *Store) fireAllWatches() {
	s.watchMu.Lock()
	ids := make([]string, 0, len(s.watched))
	for id := range s.watched {
		ids = append(ids, id)
	}
	s.watchMu.Unlock()
	for _, id := range ids {
		s.notifier.Changed(id)
	}
}

func (s *Store) isLocalOwner(owner string) bool {
	s.ownersMu.Lock()
	defer s.ownersMu.Unlock()
	_, ok := s.owners[owner]
	return ok
}

// epoch returns the epoch this store knows for owner's hosts row (0 if none), making owner local.
func (s *Store) epoch(owner string) int64 {
	s.ownersMu.Lock()
	defer s.ownersMu.Unlock()
	e, ok := s.owners[owner]
	if !ok {
		s.owners[owner] = 0
	}
	return e
}

// forgetEpoch drops owner's epoch if it is still epoch, so that the next claim starts a new one.
func (s *Store) forgetEpoch(owner string, epoch int64) {
	s.ownersMu.Lock()
	if s.owners[owner] == epoch {
		s.owners[owner] = 0
	}
	s.ownersMu.Unlock()
}

// raiseEpoch records epoch for owner unless a newer one is known already: epochs only grow, and
// a claim that was in flight across a change must not bring back the epoch it started with.
func (s *Store) raiseEpoch(owner string, epoch int64) {
	s.ownersMu.Lock()
	s.owners[owner] = max(s.owners[owner], epoch)
	s.ownersMu.Unlock()
}
