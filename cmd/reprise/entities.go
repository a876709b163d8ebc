package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/reprise-dev/reprise/store"
)

// entityCommands are the subcommands of `reprise entities`.
var entityCommands = map[string]*command{
	"list":   entityListCommand,
	"show":   entityShowCommand,
	"signal": entitySignalCommand,
	"clean":  entityCleanCommand,
}

const entitiesUsage = `Usage: reprise entities <command> [arguments] [flags]

Commands:
  list     list entities (those with state), filtered and paged
  show     show an entity's state, last operation time, lock holder, backlog and last operations
  signal   send an operation to an entity
  clean    remove empty entities and release orphaned locks (Reprise hosts, master key)

An entity is a name and a key: reprise entities show counter cats. An empty key is ''.
Run reprise help entities <command> for its flags, reprise help for global flags and exit codes.
`

// entityPath is the API path of an entity. The empty key is "$" in URLs, as a path segment
// cannot be empty.
func entityPath(name, key string) string {
	if key == "" {
		key = "$"
	}
	return "/entities/" + url.PathEscape(name) + "/" + url.PathEscape(key)
}

// entityArgs checks the NAME KEY arguments of a command.
func entityArgs(cmd string, args []string, n int, more string) (name, key string, err error) {
	if len(args) != n {
		return "", "", usagef("%s needs an entity name and key%s, got %d arguments", cmd, more, len(args))
	}
	name, key = args[0], args[1]
	if name == "" {
		return "", "", usagef("the entity name must not be empty")
	}
	if strings.Contains(name, "@") {
		return "", "", usagef("the entity name %q must not contain '@'", name)
	}
	if err := checkText("entity name", name, store.MaxKeyBytes); err != nil {
		return "", "", err
	}
	if err := checkText("entity key", key, store.MaxKeyBytes); err != nil {
		return "", "", err
	}
	return name, key, nil
}

// entityLabel is how messages name an entity: name/key, with the empty key shown as a pair of
// single quotes, as a shell would take it.
func entityLabel(name, key string) string {
	if key == "" {
		key = "''"
	}
	return sanitize(name) + "/" + sanitize(key)
}

// entityFailure is failure for an entity: a 404 names the entity, not an instance.
func (e *env) entityFailure(err error, action, name, key string) error {
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		hub := "the host's default task hub"
		if e.api.hub != "" {
			hub = fmt.Sprintf("task hub %q", e.api.hub)
		}
		return &exitError{exitNotFound, fmt.Sprintf("entity %s not found in %s (it was never signalled, or it has no state)", entityLabel(name, key), hub)}
	}
	return e.failure(err, action+" entity "+entityLabel(name, key), "")
}

var entityListCommand = &command{
	name: "entities list",
	usage: `Usage: reprise entities list [flags]

List the entities that have state as a table (NAME, KEY, LAST OPERATION), one page unless --all.

Flags:
  --name NAME            only the entities of this name
  --from T               only entities whose last operation was at or after T (RFC 3339, a date,
                         or -24h)
  --to T                 and before T
  --top N                page size (the host's default is 100)
  --state                ask for the states and show them in a STATE column
  --all                  follow the continuation token through all pages
  --continuation TOKEN   start at this page (the token a previous list printed)
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		name := fs.String("name", "", "")
		from := fs.String("from", "", "")
		to := fs.String("to", "", "")
		top := fs.Int("top", 0, "")
		state := fs.Bool("state", false, "")
		all := fs.Bool("all", false, "")
		token := fs.String("continuation", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("entities list takes no arguments, got %q (use --name for a name)", args)
			}
			if *top < 0 {
				return usagef("--top must be positive")
			}
			if strings.Contains(*name, "@") {
				return usagef("the entity name %q must not contain '@'", *name)
			}
			if err := checkText("--name", *name, store.MaxKeyBytes); err != nil {
				return err
			}
			if err := checkText("--continuation token", *token, 4*store.MaxKeyBytes); err != nil {
				return err
			}
			q := url.Values{}
			if err := addTimeFilter(q, "lastOperationTimeFrom", "--from", *from); err != nil {
				return err
			}
			if err := addTimeFilter(q, "lastOperationTimeTo", "--to", *to); err != nil {
				return err
			}
			if *top > 0 {
				q.Set("top", strconv.Itoa(*top))
			}
			if *state {
				q.Set("fetchState", "true")
			}
			path := "/entities"
			if *name != "" {
				path += "/" + url.PathEscape(*name)
			}
			return e.listEntities(ctx, path, q, *token, *all, *state)
		}
	},
}

// listEntities fetches one page, or all pages, of GET /entities[/{name}].
func (e *env) listEntities(ctx context.Context, path string, q url.Values, token string, all, withState bool) error {
	return e.listPages(ctx, listing{path: path, query: q, token: token, all: all, plural: "entities", singular: "entity",
		print: func(w io.Writer, rows []object) { printEntityTable(w, rows, withState) }})
}

// entityID reads the entityId object of an entity listing or detail.
func entityID(o object) (name, key string) {
	raw, ok := lookupKey(o, "entityId")
	if !ok {
		return "", ""
	}
	var id object
	if json.Unmarshal(raw, &id) != nil {
		return "", ""
	}
	return id.str("name"), id.str("key")
}

func printEntityTable(w io.Writer, entities []object, withState bool) {
	tw := newTable(w)
	header := "NAME\tKEY\tLAST OPERATION"
	if withState {
		header += "\tSTATE"
	}
	fmt.Fprintln(tw, header)
	for _, o := range entities {
		name, key := entityID(o)
		if key == "" {
			key = "''"
		}
		row := []string{sanitize(name), sanitize(key), displayTime(o.str("lastOperationTime"), milliLayout)}
		if withState {
			st, _ := lookupKey(o, "state")
			row = append(row, truncate(compactJSON(st), inputCellWidth))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

var entityShowCommand = &command{
	name: "entities show",
	usage: `Usage: reprise entities show NAME KEY

Show an entity: its state, the time of its last operation, the orchestration holding its lock
(in a critical section), the operations waiting behind that lock and its last operations. A
host other than Reprise answers with the state only, which is then all that is shown.
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			name, key, err := entityArgs("entities show", args, 2, "")
			if err != nil {
				return err
			}
			q := url.Values{"detail": {"true"}}
			resp, err := e.api.do(ctx, request{method: http.MethodGet, path: entityPath(name, key), query: q, ok: []int{http.StatusOK}})
			if err != nil {
				return e.entityFailure(err, "show", name, key)
			}
			if e.g.json {
				writeJSON(e.stdout, resp.body)
				return nil
			}
			var d object
			if json.Unmarshal(resp.body, &d) != nil || !isEntityDetail(d) {
				// A Durable Functions host ignores detail=true and answers the state.
				fmt.Fprintf(e.stdout, "entity: %s\nstate:\n%s\n", entityLabel(name, key), indent(prettyJSON(resp.body), "  "))
				return nil
			}
			return printEntityDetail(e.stdout, d)
		}
	},
}

// isEntityDetail tells Reprise's detail answer from an entity state that happens to be an object.
func isEntityDetail(d object) bool {
	for _, k := range []string{"entityId", "exists", "lockedBy", "backlog", "recentOperations"} {
		if _, ok := d[k]; !ok {
			return false
		}
	}
	return true
}

func printEntityDetail(w io.Writer, d object) error {
	name, key := entityID(d)
	exists, _ := lookupKey(d, "exists")
	lockedBy := d.str("lockedBy")
	if lockedBy == "" {
		lockedBy = "(free)"
	}
	backlog, _ := lookupKey(d, "backlog")
	fmt.Fprintf(w, "entity:            %s\n", entityLabel(name, key))
	fmt.Fprintf(w, "exists:            %s\n", compactJSON(exists))
	fmt.Fprintf(w, "lastOperationTime: %s\n", displayTime(d.str("lastOperationTime"), milliLayout))
	fmt.Fprintf(w, "lockedBy:          %s\n", sanitize(lockedBy))
	fmt.Fprintf(w, "backlog:           %s\n", compactJSON(backlog))
	state, _ := lookupKey(d, "state")
	if v := prettyJSON(state); strings.Contains(v, "\n") {
		fmt.Fprintf(w, "state:\n%s\n", indent(v, "  "))
	} else {
		fmt.Fprintf(w, "state:             %s\n", v)
	}
	raw, _ := lookupKey(d, "recentOperations")
	var ops []object
	if err := json.Unmarshal(raw, &ops); err != nil {
		return &exitError{exitHostError, fmt.Sprintf("the host's recentOperations is not an array of objects: %v", err)}
	}
	fmt.Fprintln(w)
	if len(ops) == 0 {
		fmt.Fprintln(w, "no operations yet")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tOPERATION\tFROM\tRESULT\tREQUEST ID")
	for _, op := range ops {
		from := op.str("caller")
		if from == "" {
			from = "signal"
		}
		result := "ok"
		if f, _ := lookupKey(op, "failed"); string(f) == "true" {
			result = "failed"
		}
		opName := op.str("operation")
		if opName == "" {
			opName = "''"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", displayTime(op.str("time"), milliLayout), sanitize(opName),
			sanitize(from), result, sanitize(op.str("requestId")))
	}
	tw.Flush()
	return nil
}

var entitySignalCommand = &command{
	name: "entities signal",
	usage: `Usage: reprise entities signal NAME KEY OP [--input JSON | --input-file F]

Send the operation OP to an entity, one-way: the host queues it and the entity runs it in turn
(the entity is created if it does not exist). The operation delete removes the entity's state.
The input must be JSON: a string is "\"text\"" in the shell, a number 5, an object '{"n":1}'.

Flags:
  --input JSON     the operation's input (default: none)
  --input-file F   read the input from file F
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		input := fs.String("input", "", "")
		inputFile := fs.String("input-file", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			name, key, err := entityArgs("entities signal", args, 3, " and an operation")
			if err != nil {
				return err
			}
			op := args[2]
			if err := checkText("operation name", op, store.MaxKeyBytes); err != nil {
				return err
			}
			inputSet := false
			fs.Visit(func(f *flag.Flag) { inputSet = inputSet || f.Name == "input" })
			var body []byte
			if inputSet || *inputFile != "" {
				if body, err = jsonArgument("input", *input, inputSet, "--input-file", *inputFile); err != nil {
					return err
				}
			}
			q := url.Values{}
			if op != "" {
				q.Set("op", op)
			}
			_, err = e.api.do(ctx, request{method: http.MethodPost, path: entityPath(name, key), query: q, body: body, ok: []int{http.StatusAccepted}})
			if err != nil {
				return e.failure(err, "signal "+strconv.Quote(op)+" to entity "+entityLabel(name, key), "")
			}
			if !e.g.json {
				fmt.Fprintf(e.stdout, "signalled %s to %s\n", sanitize(strconv.Quote(op)), entityLabel(name, key))
			}
			return nil
		}
	},
}

var entityCleanCommand = &command{
	name: "entities clean",
	usage: `Usage: reprise entities clean [--remove-empty] [--release-locks] [--empty-for D]

Clean entity storage on a Reprise host (POST entities/$clean): remove the entities that have no
state, no lock and no backlog, and release the locks held by orchestrations that no longer run.
Without flags it does both. Under the webhook route it needs the master key. The host goes
through every entity before it answers: on a large hub, raise --timeout.

Flags:
  --remove-empty    remove empty entities
  --release-locks   release orphaned locks
  --empty-for D     remove only entities that have been empty and idle for at least D (default:
                    the host's, 30m); 0 for all
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		removeEmpty := fs.Bool("remove-empty", false, "")
		releaseLocks := fs.Bool("release-locks", false, "")
		idle := fs.Duration("empty-for", -1, "")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("entities clean takes no arguments, got %q", args)
			}
			if !*removeEmpty && !*releaseLocks {
				*removeEmpty, *releaseLocks = true, true
			}
			q := url.Values{
				"removeEmptyEntities":  {strconv.FormatBool(*removeEmpty)},
				"releaseOrphanedLocks": {strconv.FormatBool(*releaseLocks)},
			}
			idleSet := false
			fs.Visit(func(f *flag.Flag) { idleSet = idleSet || f.Name == "empty-for" })
			if idleSet {
				if *idle < 0 {
					return usagef("--empty-for must not be negative")
				}
				q.Set("emptyForSeconds", seconds(*idle))
			}
			resp, err := e.api.do(ctx, request{method: http.MethodPost, path: "/entities/$clean", query: q, ok: []int{http.StatusOK}})
			if err != nil {
				var se *statusError
				switch {
				case errors.As(err, &se) && se.status == http.StatusUnauthorized:
					return &exitError{exitUnreachable, "the host refused to clean entity storage (401): it needs the master key; pass it with --key or REPRISE_KEY " +
						"(where a Reprise host runs, `reprise keys` prints it)"}
				case errors.As(err, &se) && se.status == http.StatusNotFound:
					return &exitError{exitNotFound, "the host has no entity clean route (404): cleaning entity storage over HTTP is Reprise's own; check --url"}
				}
				return e.failure(err, "clean entity storage", "")
			}
			if e.g.json {
				writeJSON(e.stdout, resp.body)
				return nil
			}
			var res struct {
				Removed  int `json:"emptyEntitiesRemoved"`
				Released int `json:"orphanedLocksReleased"`
			}
			if err := json.Unmarshal(resp.body, &res); err != nil {
				return &exitError{exitHostError, fmt.Sprintf("the host's answer to the clean is not the expected JSON: %v", err)}
			}
			entities := "entities"
			if res.Removed == 1 {
				entities = "entity"
			}
			fmt.Fprintf(e.stdout, "removed %d empty %s, released %s\n", res.Removed, entities, plural(res.Released, "orphaned lock"))
			return nil
		}
	},
}
