package store

import (
	"fmt"
	"strings"
)

// EntityInstanceID returns the instance ID of the entity with the name and key, as Durable
// Functions forms it: "@" + lower-cased name + "@" + key (the key keeps its case). Names match
// case-insensitively, keys do not.
func EntityInstanceID(name, key string) string {
	return "@" + strings.ToLower(name) + "@" + key
}

// ParseEntityInstanceID splits an entity's instance ID into its name and key. It reports false
// for an ID that is not an entity's: one that does not start with "@", has no second "@", or has
// an empty name. The key may be empty and may hold "@".
func ParseEntityInstanceID(id string) (name, key string, ok bool) {
	rest, found := strings.CutPrefix(id, "@")
	if !found {
		return "", "", false
	}
	name, key, found = strings.Cut(rest, "@")
	if !found || name == "" {
		return "", "", false
	}
	return name, key, true
}

// CheckEntityMessage checks a message for SendEntityMessages and Episode.EntityMessages: its
// target must be an entity's instance ID (ParseEntityInstanceID) that a store can key
// (CheckID), with a name in lower case, as EntityInstanceID makes it.
func CheckEntityMessage(m Message) error {
	name, _, ok := ParseEntityInstanceID(m.InstanceID)
	if !ok {
		return fmt.Errorf("%w: %q is not an entity's instance ID (want @name@key)", ErrInvalidArgument, m.InstanceID)
	}
	if name != strings.ToLower(name) {
		return fmt.Errorf("%w: entity instance ID %q has a name with upper-case letters; build it with EntityInstanceID", ErrInvalidArgument, m.InstanceID)
	}
	return CheckID(m.InstanceID)
}
