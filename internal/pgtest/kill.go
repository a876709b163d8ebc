package pgtest

import (
	"context"
	"fmt"
)

// KillConnections terminates every other connection to the database of dsn (one that DSN
// returned), as a network failure or a server-side kill would, and returns how many it ended.
// Only that database's connections are touched: other tests share the server.
func KillConnections(ctx context.Context, dsn string) (int, error) {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pgtest: kill connections: %w", err)
	}
	return n, nil
}
