package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/reprise-dev/reprise/store"
)

// Setting returns a setting of the hub, storing init first when there is none (see store.Store).
// Settings are read once at a host's start, so neither statement is prepared.
func (s *Store) Setting(ctx context.Context, name string, init []byte) ([]byte, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: setting %q: %w", name, store.ErrClosed)
	}
	const get = `SELECT value FROM settings WHERE hub = ? AND name = ?`
	var v []byte
	err := s.readDB.QueryRowContext(ctx, get, s.hub, name).Scan(&v)
	switch {
	case err == nil:
		return v, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, s.readErr("read setting "+name, err)
	case init == nil:
		return nil, nil
	}
	var stored []byte
	err = s.do(ctx, func(w *writer, _ *effects) error {
		if _, err := w.conn.ExecContext(w.ctx, `INSERT INTO settings (hub, name, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			w.hub, name, init); err != nil {
			return fmt.Errorf("sqlite: store setting %q: %w", name, err)
		}
		// Another process may have stored it first: what is stored now is the answer.
		if err := w.conn.QueryRowContext(w.ctx, get, w.hub, name).Scan(&stored); err != nil {
			return fmt.Errorf("sqlite: read setting %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}
