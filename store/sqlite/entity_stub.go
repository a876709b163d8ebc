package sqlite

// TEMPORARY: stubs of the entity methods until branch ent-store lands; delete this file when merging it.

import (
	"context"
	"errors"
	"time"

	"github.com/reprise-dev/reprise/store"
)

var errEntityStub = errors.New("sqlite: entities not implemented yet (stub)")

func (s *Store) SendEntityMessages(ctx context.Context, msgs []store.Message) error { return errEntityStub }
func (s *Store) DeleteEntity(ctx context.Context, id string, updatedAt time.Time) (bool, error) {
	return false, errEntityStub
}
func (s *Store) ClaimEntities(ctx context.Context, owner string, names store.Names, max int, leaseFor time.Duration) ([]store.OrchestrationWork, error) {
	return nil, errEntityStub
}
