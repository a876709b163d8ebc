package reprise

import (
	"errors"
	"fmt"
	"strings"

	"github.com/reprise-dev/reprise/store"
)

// EntityID names a durable entity: the name of its entity type and the key of the instance.
// Names match case-insensitively (the ID holds the name in lower case), keys exactly. An
// entity's instance ID, as Durable Functions writes it and the management API shows it, is
// "@name@key" (see String and ParseEntityID).
type EntityID struct {
	Name string // the entity name: not empty, without '@'
	Key  string // the instance's key: any text (it may be empty and hold '@')
}

// String returns the entity's instance ID: "@" + the lower-cased name + "@" + the key.
func (id EntityID) String() string { return store.EntityInstanceID(id.Name, id.Key) }

// ParseEntityID returns the EntityID of an entity's instance ID ("@name@key"), or an error
// wrapping ErrInvalidArgument that names the ID when it is not one.
func ParseEntityID(instanceID string) (EntityID, error) {
	name, key, ok := store.ParseEntityInstanceID(instanceID)
	if !ok {
		return EntityID{}, fmt.Errorf("%w: %q is not an entity's instance ID: want @name@key, with a name that is not empty",
			ErrInvalidArgument, instanceID)
	}
	id := EntityID{Name: name, Key: key}
	if err := id.check(); err != nil {
		return EntityID{}, fmt.Errorf("entity instance ID %q: %w", instanceID, err)
	}
	return id, nil
}

// check reports why id cannot name an entity (an error wrapping ErrInvalidArgument), or nil:
// an empty name, a name with '@', text that is not UTF-8 or holds NUL, an ID longer than a
// store keeps.
func (id EntityID) check() error {
	if id.Name == "" {
		return fmt.Errorf("%w: the entity name is empty (entity key %q)", ErrInvalidArgument, id.Key)
	}
	if strings.Contains(id.Name, "@") {
		return fmt.Errorf("%w: the entity name %q contains '@', which separates the name from the key in its instance ID", ErrInvalidArgument, id.Name)
	}
	return errors.Join(
		store.CheckText("entity name", id.Name, store.MaxKeyBytes),
		store.CheckText("entity key", id.Key, store.MaxKeyBytes),
		store.CheckID(id.String()),
	)
}
