package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Setting returns a setting of the hub, storing init first when there is none (see store.Store).
func (s *Store) Setting(ctx context.Context, name string, init []byte) ([]byte, error) {
	if s.isClosed() {
		return nil, errClosed("setting " + name)
	}
	const get = `SELECT value FROM reprise.settings WHERE hub = $1 AND name = $2`
	var v []byte
	err := s.pool.QueryRow(ctx, get, s.hub, name).Scan(&v)
	switch {
	case err == nil:
		return v, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, s.dbErr("read setting "+name, err)
	case init == nil:
		return nil, nil
	}
	// ON CONFLICT waits for a concurrent insert of the same setting to commit; the SELECT after
	// it, a statement of its own (read committed), then sees whichever value was stored first.
	if _, err := s.pool.Exec(ctx, `INSERT INTO reprise.settings (hub, name, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		s.hub, name, init); err != nil {
		return nil, s.dbErr("store setting "+name, err)
	}
	if err := s.pool.QueryRow(ctx, get, s.hub, name).Scan(&v); err != nil {
		return nil, s.dbErr("read setting "+name, err)
	}
	return v, nil
}
