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
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/store"
)

// env is what a running command works with.
type env struct {
	api    *apiClient
	g      *globals
	stdout io.Writer
	stderr io.Writer
}

// instanceCommands are the subcommands of `reprise instances`.
var instanceCommands = map[string]*command{
	"list":      listCommand,
	"show":      showCommand,
	"history":   historyCommand,
	"export":    exportCommand,
	"raise":     raiseCommand,
	"terminate": stateCommand("terminate", "terminated", "Terminate a running, pending or suspended instance. It ends with status Terminated\nand the reason as its output."),
	"suspend":   stateCommand("suspend", "suspended", "Suspend an instance: it keeps its state and queues what arrives until resumed."),
	"resume":    stateCommand("resume", "resumed", "Resume a suspended instance."),
	"rewind":    stateCommand("rewind", "rewound", "Rewind a Failed instance: rerun the activities and sub-orchestrations whose failures\nended it, keeping what succeeded. Deploy fixed code first."),
	"restart":   restartCommand,
	"purge":     purgeCommand,
}

var listCommand = &command{
	name: "instances list",
	usage: `Usage: reprise instances list [flags]

List instances as a table (INSTANCE ID, NAME, STATUS, CREATED, UPDATED, and VERSION when a listed
instance has one), newest first, one page unless --all.

Flags:
  --status S,...         only these runtime statuses (Pending, Running, Completed, ContinuedAsNew,
                         Failed, Canceled, Terminated, Suspended)
  --prefix ID            only instance IDs starting with this
  --created-from T       only instances created at or after T (RFC 3339, a date, or -24h)
  --created-to T         only instances created at or before T
  --version V            only instances started with version V, exactly (case-sensitive);
                         repeat for several; --version "" for the instances without one.
                         Reprise hosts only: others ignore it and list every version
  --top N                page size (the host's default is 100)
  --order O              newest (the default) or oldest first, by creation time; hosts other
                         than Reprise ignore it and list in their own order
  --all                  follow the continuation token through all pages
  --continuation TOKEN   start at this page (the token a previous list printed)
  --show-input           ask for inputs and show them in an INPUT column
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		status := fs.String("status", "", "")
		prefix := fs.String("prefix", "", "")
		from := fs.String("created-from", "", "")
		to := fs.String("created-to", "", "")
		top := fs.Int("top", 0, "")
		all := fs.Bool("all", false, "")
		token := fs.String("continuation", "", "")
		showInput := fs.Bool("show-input", false, "")
		order := fs.String("order", "newest", "")
		var versions stringsFlag
		fs.Var(&versions, "version", "")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("instances list takes no arguments, got %q", args)
			}
			if len(versions) > store.MaxQueryVersions {
				return usagef("--version is given %d times; at most %d versions can be listed at once", len(versions), store.MaxQueryVersions)
			}
			for _, v := range versions {
				if err := checkText("--version", v, store.MaxKeyBytes); err != nil {
					return err
				}
			}
			if *order != "newest" && *order != "oldest" {
				return usagef("unknown --order %q: use newest or oldest", *order)
			}
			if *top < 0 {
				return usagef("--top must be positive")
			}
			q := url.Values{}
			if err := addStatusFilter(q, *status); err != nil {
				return err
			}
			if err := addTimeFilter(q, "createdTimeFrom", "--created-from", *from); err != nil {
				return err
			}
			if err := addTimeFilter(q, "createdTimeTo", "--created-to", *to); err != nil {
				return err
			}
			if err := checkText("--prefix", *prefix, store.MaxKeyBytes); err != nil {
				return err
			}
			if err := checkText("--continuation token", *token, 4*store.MaxKeyBytes); err != nil {
				return err
			}
			if *prefix != "" {
				q.Set("instanceIdPrefix", *prefix)
			}
			if *top > 0 {
				q.Set("top", strconv.Itoa(*top))
			}
			if len(versions) > 0 {
				// A Reprise host's own parameter, repeated for several versions; an empty value
				// selects the instances without a version.
				q["version"] = versions
			}
			// Inputs can be large; the table does not show them unless asked.
			q.Set("showInput", strconv.FormatBool(*showInput))
			// A Reprise host's own parameter: the newest instances are the ones people look for,
			// and the API's default (oldest first) is what Durable Functions clients expect.
			q.Set("order", *order)
			return e.list(ctx, q, *token, *all, *showInput)
		}
	},
}

// list fetches one page, or all pages, of GET /instances.
func (e *env) list(ctx context.Context, q url.Values, token string, all, showInput bool) error {
	return e.listPages(ctx, listing{path: "/instances", query: q, token: token, all: all, plural: "instances", singular: "instance",
		print: func(w io.Writer, rows []object) { printInstanceTable(w, rows, showInput) }})
}

// listing is a paged GET of the management API: GET /instances, GET /entities[/{name}].
type listing struct {
	path             string
	query            url.Values
	token            string // the continuation token to start from; "" for the first page
	all              bool   // follow the continuation tokens to the last page
	plural, singular string // what is listed, for messages
	print            func(w io.Writer, rows []object)
}

// listPages fetches one page, or all pages, of a listing and prints them: as the host's JSON
// (an array) with --json, else as a table.
func (e *env) listPages(ctx context.Context, l listing) error {
	var docs []json.RawMessage
	var firstBody []byte
	pages := 0
	seen := map[string]bool{}
	token := l.token
	for {
		var header http.Header
		if token != "" {
			header = http.Header{continuationHeader: {token}}
		}
		resp, err := e.api.do(ctx, request{method: http.MethodGet, path: l.path, query: l.query, header: header, ok: []int{http.StatusOK}})
		if err != nil {
			return e.failure(err, "list "+l.plural, "")
		}
		var page []json.RawMessage
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return &exitError{exitHostError, fmt.Sprintf("the host's answer to GET %s is not a JSON array: %v", l.path, err)}
		}
		if pages == 0 {
			firstBody = resp.body
		}
		pages++
		docs = append(docs, page...)
		token = resp.header.Get(continuationHeader)
		if !l.all || token == "" {
			break
		}
		// A host that hands out the same token again would keep this loop going forever.
		if seen[token] {
			return &exitError{exitHostError, "the host returned the same continuation token twice; stopping (list without --all to page by hand)"}
		}
		seen[token] = true
	}

	switch {
	case e.g.json && pages == 1:
		writeJSON(e.stdout, firstBody)
	case e.g.json:
		out, err := json.Marshal(docs)
		if err != nil {
			return err
		}
		writeJSON(e.stdout, out)
	case len(docs) == 0:
		fmt.Fprintf(e.stdout, "no %s found\n", l.plural)
	default:
		rows := make([]object, 0, len(docs))
		for _, d := range docs {
			var o object
			if err := json.Unmarshal(d, &o); err != nil {
				return &exitError{exitHostError, fmt.Sprintf("the host listed an %s that is not a JSON object: %v", l.singular, err)}
			}
			rows = append(rows, o)
		}
		l.print(e.stdout, rows)
	}
	if token != "" {
		// On stderr, so that stdout stays one table or one JSON document.
		fmt.Fprintf(e.stderr, "more %s: add --all to list them all, or --continuation %s for the next page\n", l.plural, shellQuote(token))
	}
	return nil
}

// stringsFlag is a flag that may be repeated: each use adds a value, "" included.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }

var showCommand = &command{
	name: "instances show",
	usage: `Usage: reprise instances show ID [flags]

Show an instance's status: name, version (when it has one), runtime status, times, input, output
and custom status.

Flags:
  --history          also show its history as a table
  --history-output   include task results in the history (implies --history)
  --no-input         leave out the instance's input
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		withHistory := fs.Bool("history", false, "")
		historyOutput := fs.Bool("history-output", false, "")
		noInput := fs.Bool("no-input", false, "")
		return func(ctx context.Context, e *env, args []string) error {
			id, err := oneID("instances show", args)
			if err != nil {
				return err
			}
			wantHistory := *withHistory || *historyOutput
			st, body, err := e.getStatus(ctx, id, wantHistory, *historyOutput, !*noInput)
			if err != nil {
				return err
			}
			if e.g.json {
				writeJSON(e.stdout, body)
				return nil
			}
			printStatus(e.stdout, st)
			if wantHistory {
				events, err := historyEvents(st)
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout)
				if len(events) == 0 {
					fmt.Fprintln(e.stdout, "no history yet")
				} else {
					printHistoryTable(e.stdout, events)
				}
			}
			return nil
		}
	},
}

var historyCommand = &command{
	name: "instances history",
	usage: `Usage: reprise instances history ID [--output]

Show the history of an instance's current execution as a table: time, event type, name (of the
activity, orchestrator or event) and details (status, reason, error, timer, time from scheduled
to completed). With --json, print the host's historyEvents array.

Flags:
  --output   include payloads: task inputs and results, event data
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		output := fs.Bool("output", false, "")
		return func(ctx context.Context, e *env, args []string) error {
			id, err := oneID("instances history", args)
			if err != nil {
				return err
			}
			st, _, err := e.getStatus(ctx, id, true, *output, *output)
			if err != nil {
				return err
			}
			if e.g.json {
				raw, ok := lookupKey(st, "historyEvents")
				if !ok {
					raw = json.RawMessage("[]")
				}
				writeJSON(e.stdout, raw)
				return nil
			}
			events, err := historyEvents(st)
			if err != nil {
				return err
			}
			if len(events) == 0 {
				fmt.Fprintf(e.stdout, "no history yet (instance %s is %s)\n", sanitize(id), sanitize(st.str("runtimeStatus")))
				return nil
			}
			printHistoryTable(e.stdout, events)
			return nil
		}
	},
}

// getStatus reads GET /instances/{id}; the host answers 202 while the instance runs and 200
// once it has finished, both with the status payload.
func (e *env) getStatus(ctx context.Context, id string, showHistory, showHistoryOutput, showInput bool) (object, []byte, error) {
	q := url.Values{
		"showHistory":       {strconv.FormatBool(showHistory)},
		"showHistoryOutput": {strconv.FormatBool(showHistoryOutput)},
		"showInput":         {strconv.FormatBool(showInput)},
	}
	resp, err := e.api.do(ctx, request{method: http.MethodGet, path: instancePath(id), query: q, ok: []int{http.StatusOK, http.StatusAccepted}})
	if err != nil {
		return nil, nil, e.failure(err, "get", id)
	}
	var st object
	if err := json.Unmarshal(resp.body, &st); err != nil {
		return nil, nil, &exitError{exitHostError, fmt.Sprintf("the host's status of instance %s is not a JSON object: %v", sanitize(id), err)}
	}
	return st, resp.body, nil
}

func historyEvents(st object) ([]object, error) {
	raw, ok := lookupKey(st, "historyEvents")
	if !ok || isNull(raw) {
		return nil, nil
	}
	var events []object
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, &exitError{exitHostError, fmt.Sprintf("the host's historyEvents is not an array of objects: %v", err)}
	}
	return events, nil
}

var raiseCommand = &command{
	name: "instances raise",
	usage: `Usage: reprise instances raise ID EVENT [DATA-JSON | --data-file F]

Raise the external event EVENT on an instance, with DATA-JSON (default null) as its data. The
data must be JSON: a string is "\"text\"" in the shell, a number 42, an object '{"ok":true}'.

Flags:
  --data-file F   read the data from file F
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		dataFile := fs.String("data-file", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return usagef("instances raise needs an instance ID, an event name and optionally the data, got %d arguments", len(args))
			}
			id, event := args[0], args[1]
			if id == "" || event == "" {
				return usagef("the instance ID and the event name must not be empty")
			}
			if err := checkID(id); err != nil {
				return err
			}
			if err := checkText("event name", event, store.MaxKeyBytes); err != nil {
				return err
			}
			inline := ""
			if len(args) == 3 {
				inline = args[2]
			}
			data, err := jsonArgument("event data", inline, len(args) == 3, "--data-file", *dataFile)
			if err != nil {
				return err
			}
			_, err = e.api.do(ctx, request{method: http.MethodPost, path: instancePath(id, "raiseEvent", event), body: data, ok: []int{http.StatusAccepted, http.StatusOK}})
			if err != nil {
				return e.failure(err, "raise event "+strconv.Quote(event)+" on", id)
			}
			if !e.g.json {
				fmt.Fprintf(e.stdout, "raised %s on %s\n", sanitize(event), sanitize(id))
			}
			return nil
		}
	},
}

// stateCommand makes terminate, suspend, resume and rewind: POST /instances/{id}/{op}?reason=R,
// which the host accepts with 202 and carries out asynchronously.
func stateCommand(op, done, help string) *command {
	return &command{
		name: "instances " + op,
		usage: fmt.Sprintf(`Usage: reprise instances %s ID [--reason R]

%s

Flags:
  --reason R   why; recorded in the history
`, op, help),
		flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
			reason := fs.String("reason", "", "")
			return func(ctx context.Context, e *env, args []string) error {
				id, err := oneID("instances "+op, args)
				if err != nil {
					return err
				}
				if err := checkText("--reason", *reason, maxReasonBytes); err != nil {
					return err
				}
				q := url.Values{}
				if *reason != "" {
					q.Set("reason", *reason)
				}
				_, err = e.api.do(ctx, request{method: http.MethodPost, path: instancePath(id, op), query: q, ok: []int{http.StatusAccepted, http.StatusOK}})
				if err != nil {
					return e.failure(err, op, id)
				}
				if !e.g.json {
					line := done + " " + sanitize(id)
					if *reason != "" {
						line += " (reason: " + sanitize(*reason) + ")"
					}
					fmt.Fprintln(e.stdout, line)
				}
				return nil
			}
		},
	}
}

var restartCommand = &command{
	name: "instances restart",
	usage: `Usage: reprise instances restart ID [--same-id]

Start the instance's orchestrator again with its original input, under a new instance ID, and
print that ID.

Flags:
  --same-id   reuse the instance ID (the instance must have finished)
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		sameID := fs.Bool("same-id", false, "")
		return func(ctx context.Context, e *env, args []string) error {
			id, err := oneID("instances restart", args)
			if err != nil {
				return err
			}
			q := url.Values{"restartWithNewInstanceId": {strconv.FormatBool(!*sameID)}}
			resp, err := e.api.do(ctx, request{method: http.MethodPost, path: instancePath(id, "restart"), query: q, ok: []int{http.StatusAccepted, http.StatusOK}})
			if err != nil {
				// Durable Functions answers 400 with this message for an unknown instance.
				var se *statusError
				if errors.As(err, &se) && se.status == http.StatusBadRequest && strings.Contains(se.message, "does not match a valid orchestration instance") {
					return &exitError{exitNotFound, e.notFoundMessage(id)}
				}
				return e.failure(err, "restart", id)
			}
			if e.g.json {
				writeJSON(e.stdout, resp.body)
				return nil
			}
			var payload object
			_ = json.Unmarshal(resp.body, &payload)
			newID := payload.str("id")
			switch {
			case newID == "" || newID == id:
				fmt.Fprintf(e.stdout, "restarted %s\n", sanitize(id))
			default:
				fmt.Fprintf(e.stdout, "restarted %s as %s\n", sanitize(id), sanitize(newID))
			}
			return nil
		}
	},
}

var purgeCommand = &command{
	name: "instances purge",
	usage: `Usage: reprise instances purge ID
       reprise instances purge --created-from T [--created-to T] [--status S,...]

Delete an instance, or the instances created in a time range, with their history. Hosts purge
only finished instances (Reprise answers 409 for others: terminate them first). Purging by
filter when nothing matches succeeds and reports 0.

Flags:
  --created-from T   purge instances created at or after T (required without ID)
  --created-to T     and at or before T (default: now)
  --status S,...     only these statuses, e.g. Completed,Failed,Terminated
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		from := fs.String("created-from", "", "")
		to := fs.String("created-to", "", "")
		status := fs.String("status", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			filtered := *from != "" || *to != "" || *status != ""
			switch {
			case len(args) > 1:
				return usagef("instances purge takes one instance ID, got %d arguments", len(args))
			case len(args) == 1 && filtered:
				return usagef("give either an instance ID or filters (--created-from, --created-to, --status), not both")
			case len(args) == 1:
				return e.purgeOne(ctx, args[0])
			case *from == "":
				return usagef("instances purge needs an instance ID, or --created-from to purge by filter")
			}
			q := url.Values{}
			if err := addTimeFilter(q, "createdTimeFrom", "--created-from", *from); err != nil {
				return err
			}
			if err := addTimeFilter(q, "createdTimeTo", "--created-to", *to); err != nil {
				return err
			}
			if err := addStatusFilter(q, *status); err != nil {
				return err
			}
			resp, err := e.api.do(ctx, request{method: http.MethodDelete, path: "/instances", query: q, ok: []int{http.StatusOK, http.StatusNotFound}})
			if err != nil {
				return e.failure(err, "purge instances", "")
			}
			// Durable Functions answers 404 when nothing matched. For a cleanup job that is
			// success with nothing to do, not an error to alert on.
			body := resp.body
			if resp.status == http.StatusNotFound {
				body = []byte(`{"instancesDeleted":0}`)
			}
			if e.g.json {
				writeJSON(e.stdout, body)
				return nil
			}
			n, err := instancesDeleted(body)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "purged %s\n", plural(n, "instance"))
			return nil
		}
	},
}

func (e *env) purgeOne(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	resp, err := e.api.do(ctx, request{method: http.MethodDelete, path: instancePath(id), ok: []int{http.StatusOK}})
	if err != nil {
		return e.failure(err, "purge", id)
	}
	if e.g.json {
		writeJSON(e.stdout, resp.body)
		return nil
	}
	fmt.Fprintf(e.stdout, "purged %s\n", sanitize(id))
	return nil
}

func instancesDeleted(body []byte) (int, error) {
	var r struct {
		InstancesDeleted *int `json:"instancesDeleted"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.InstancesDeleted == nil {
		return 0, &exitError{exitHostError, fmt.Sprintf("the host's answer to purge lacks instancesDeleted: %s", truncate(sanitize(string(body)), 200))}
	}
	return *r.InstancesDeleted, nil
}

var startNewCommand = &command{
	name: "start-new",
	usage: `Usage: reprise start-new NAME [--id ID] [--version V] [--input JSON | --input-file F] [--wait [--timeout D]]

Start a new instance of the orchestrator NAME and print its instance ID.

Flags:
  --id ID          the instance ID (default: the host picks a random one)
  --version V      the orchestration version to stamp on the instance (default: none, or the
                   host's default version)
  --input JSON     the orchestrator's input, as JSON (default null)
  --input-file F   read the input from file F
  --wait           wait for the instance to finish and print its output; the exit code is 0 if
                   it Completed, 6 if it ended Failed, Terminated or Canceled, 7 if it was still
                   running when --timeout (default 30s) ran out
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		id := fs.String("id", "", "")
		input := fs.String("input", "", "")
		inputFile := fs.String("input-file", "", "")
		wait := fs.Bool("wait", false, "")
		version := fs.String("version", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("start-new needs the orchestrator's name, got %d arguments", len(args))
			}
			name := args[0]
			if err := checkText("orchestrator name", name, store.MaxKeyBytes); err != nil {
				return err
			}
			if err := checkText("--version", *version, store.MaxKeyBytes); err != nil {
				return err
			}
			var q url.Values
			if *version != "" {
				q = url.Values{"version": {*version}}
			}
			if *id != "" {
				if err := reprise.ValidateInstanceID(*id); err != nil {
					return usagef("--id: %v", err)
				}
			}
			inputSet := false
			fs.Visit(func(f *flag.Flag) { inputSet = inputSet || f.Name == "input" })
			body, err := jsonArgument("input", *input, inputSet, "--input-file", *inputFile)
			if err != nil {
				return err
			}
			if *wait {
				return e.startAndWait(ctx, name, *id, q, body)
			}
			path := "/orchestrators/" + url.PathEscape(name)
			if *id != "" {
				path += "/" + url.PathEscape(*id)
			}
			resp, err := e.api.do(ctx, request{method: http.MethodPost, path: path, query: q, body: body, ok: []int{http.StatusAccepted, http.StatusOK}})
			if err != nil {
				return e.startFailure(err, name, *id)
			}
			if e.g.json {
				writeJSON(e.stdout, resp.body)
				return nil
			}
			var payload object
			_ = json.Unmarshal(resp.body, &payload)
			fmt.Fprintf(e.stdout, "started %s as %s\n", sanitize(name), sanitize(firstNonEmpty(payload.str("id"), *id)))
			return nil
		}
	},
}

// waitGrace is how much longer than the wait itself a start-new --wait request may take: the
// host answers 202 when the wait runs out, and that answer must still arrive.
const waitGrace = 15 * time.Second

// waitPollInterval is how often the host (or, if the host gives up early, this program) checks
// the instance while waiting.
const waitPollInterval = time.Second

// startAndWait starts the instance with the host's wait semantics (?timeout=&pollingInterval=):
// 200 with the output if it completed, 200 with the status payload if it failed or was
// terminated, 202 if it still runs when the timeout passes.
func (e *env) startAndWait(ctx context.Context, name, id string, q url.Values, body []byte) error {
	if id == "" {
		// A completed wait answers with the output alone, so the ID must be known beforehand
		// to tell the user which instance it was.
		id = control.NewID() // 32 hex characters, the form Durable Functions gives generated IDs
	}
	wait := e.g.timeout
	deadline := time.Now().Add(wait)
	poll := min(waitPollInterval, wait)
	if q == nil {
		q = url.Values{}
	}
	q.Set("timeout", seconds(wait))
	q.Set("pollingInterval", seconds(poll))
	path := "/orchestrators/" + url.PathEscape(name) + "/" + url.PathEscape(id)
	resp, err := e.api.do(ctx, request{method: http.MethodPost, path: path, query: q, body: body,
		timeout: wait + waitGrace, ok: []int{http.StatusOK, http.StatusAccepted}})
	if err != nil {
		return e.startFailure(err, name, id)
	}

	var st object
	switch {
	case resp.status == http.StatusOK && !isStatusPayload(resp.body, id):
		st = object{"instanceId": jsonString(id), "name": jsonString(name), "runtimeStatus": jsonString("Completed"), "output": resp.body}
		if e.g.json {
			writeJSON(e.stdout, resp.body)
			return nil
		}
	case resp.status == http.StatusOK:
		_ = json.Unmarshal(resp.body, &st)
		if e.g.json {
			writeJSON(e.stdout, resp.body)
		}
	default:
		// Some hosts cap how long they wait; keep watching until our own deadline.
		st, err = e.pollUntilDone(ctx, id, deadline, poll)
		if err != nil {
			return err
		}
		if e.g.json {
			if st.str("runtimeStatus") == "Completed" {
				out, _ := lookupKey(st, "output")
				writeJSON(e.stdout, out)
			} else if terminal(st.str("runtimeStatus")) {
				raw, _ := json.Marshal(st)
				writeJSON(e.stdout, raw)
			} else {
				writeJSON(e.stdout, resp.body)
			}
		}
	}

	status := st.str("runtimeStatus")
	if !e.g.json {
		printStatus(e.stdout, st)
	}
	switch {
	case status == "Completed":
		return nil
	case terminal(status):
		return &exitError{exitEndedBadly, fmt.Sprintf("instance %s ended %s", sanitize(id), status)}
	}
	return &exitError{exitStillActive, fmt.Sprintf("instance %s is still %s after %s; follow it with: reprise instances show %s",
		sanitize(id), firstNonEmpty(status, "running"), wait, shellQuote(id))}
}

// pollUntilDone reads the instance's status until it has finished or the deadline passes, and
// returns the last status read.
func (e *env) pollUntilDone(ctx context.Context, id string, deadline time.Time, every time.Duration) (object, error) {
	for {
		st, _, err := e.getStatus(ctx, id, false, false, false)
		if err != nil {
			return nil, err
		}
		left := time.Until(deadline)
		if terminal(st.str("runtimeStatus")) || left <= 0 {
			return st, nil
		}
		t := time.NewTimer(min(every, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return st, nil
		case <-t.C:
		}
	}
}

// isStatusPayload tells the status payload of a failed or terminated instance from the output of
// a completed one, since both come with 200.
func isStatusPayload(body []byte, id string) bool {
	var o object
	if json.Unmarshal(body, &o) != nil {
		return false
	}
	return o.str("instanceId") == id && o.str("runtimeStatus") != ""
}

// terminal reports whether a runtime status is final.
func terminal(status string) bool {
	switch status {
	case "Completed", "Failed", "Terminated", "Canceled":
		return true
	}
	return false
}

func (e *env) startFailure(err error, name, id string) error {
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusConflict && se.message == "" {
		return &exitError{exitState, fmt.Sprintf("cannot start %s as %s: an active instance already has that ID (409)", sanitize(name), sanitize(id))}
	}
	if id == "" {
		return e.failure(err, "start "+name, "")
	}
	// Not a lookup of an existing instance, so a 404 here is about the route, not the ID.
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return e.failure(err, "start "+name+" as "+id, "")
	}
	return e.failure(err, "start "+name+" as", id)
}

// seconds formats a duration for the timeout and pollingInterval query parameters.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// failure turns an error from the API client into what the user sees: a message that says what
// went wrong and what to do, and the exit code. action and id describe what was attempted:
// ("terminate", "abc") reads "cannot terminate abc".
func (e *env) failure(err error, action, id string) error {
	var te *transportError
	if errors.As(err, &te) {
		return &exitError{exitUnreachable, te.Error()}
	}
	var se *statusError
	if !errors.As(err, &se) {
		return &exitError{exitHostError, err.Error()}
	}
	target := action
	if id != "" {
		target += " " + sanitize(id)
	}
	// explain says what a status means for hosts that answer it without a body (Durable
	// Functions does for 404 and 410); what the host says, when it says something, is better.
	explain := func(code int, explanation string) error {
		if se.message != "" {
			return &exitError{code, fmt.Sprintf("cannot %s (%s): %s", target, httpStatus(se.status), se.message)}
		}
		return &exitError{code, fmt.Sprintf("cannot %s: %s (%s)", target, explanation, httpStatus(se.status))}
	}
	switch se.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		verb := "refused the key"
		if e.api.key == "" {
			verb = "requires a key"
		}
		return &exitError{exitUnreachable, fmt.Sprintf("the host %s (%d): pass the system or master key with --key or REPRISE_KEY "+
			"(where a Reprise host runs, `reprise keys` prints the keys it generated)", verb, se.status)}
	case http.StatusNotFound:
		if id != "" {
			return &exitError{exitNotFound, e.notFoundMessage(id)}
		}
		return explain(exitNotFound, "the host has no Durable Functions management API at "+se.url+"; check --url")
	case http.StatusGone:
		return explain(exitState, "the instance has already finished")
	case http.StatusPreconditionFailed:
		return explain(exitState, "only Failed instances can be rewound")
	case http.StatusConflict:
		return explain(exitState, "the instance's state does not allow it")
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return &exitError{exitHostError, fmt.Sprintf("cannot %s: the host redirects to %s (%d); set --url to the address it redirects to", target, sanitize(se.location), se.status)}
	case http.StatusBadRequest:
		return explain(exitHostError, "the host rejected the request")
	}
	if se.status >= 500 {
		return explain(exitHostError, "the host failed")
	}
	return explain(exitHostError, "unexpected answer from the host to "+se.method+" "+se.url)
}

func (e *env) notFoundMessage(id string) string {
	hub := "the host's default task hub"
	if e.api.hub != "" {
		hub = fmt.Sprintf("task hub %q", e.api.hub)
	}
	return fmt.Sprintf("instance %q not found in %s", sanitize(id), hub)
}

// oneID returns the single instance ID a command takes.
func oneID(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("%s needs exactly one instance ID, got %d arguments", cmd, len(args))
	}
	if err := checkID(args[0]); err != nil {
		return "", err
	}
	return args[0], nil
}

// maxReasonBytes is the host's limit on a reason.
const maxReasonBytes = control.MaxReasonBytes

// checkID and checkText refuse, before anything is sent, what every host refuses: text that is
// not UTF-8, holds NUL or is too long (see store.CheckText).
func checkID(id string) error {
	if id == "" {
		return usagef("the instance ID must not be empty")
	}
	return checkText("instance ID", id, store.MaxKeyBytes)
}

func checkText(what, s string, maxBytes int) error {
	if err := store.CheckText(what, s, maxBytes); err != nil {
		return usagef("%v", strings.TrimPrefix(err.Error(), store.ErrInvalidArgument.Error()+": "))
	}
	return nil
}

// jsonArgument returns the JSON given inline (when given) or in a file, checked to be valid, or
// null when neither is given. Checking here turns a typo into a usage error naming the problem
// instead of a 400 from the host.
func jsonArgument(what, inline string, inlineSet bool, fileFlag, file string) ([]byte, error) {
	var data []byte
	switch {
	case inlineSet && file != "":
		return nil, usagef("give the %s inline or with %s, not both", what, fileFlag)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("cannot read the %s: %v", what, err)
		}
		data = b
	case inlineSet:
		data = []byte(inline)
	default:
		return []byte("null"), nil
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, usagef("the %s is not valid JSON (%v); a string needs quotes: '\"text\"'", what, err)
	}
	if !utf8.Valid(data) {
		return nil, usagef("the %s is not valid UTF-8; JSON text must be UTF-8", what)
	}
	return data, nil
}

// runtimeStatuses are the statuses a filter may name, spelled as the host expects: Durable
// Functions parses them case-sensitively and drops the ones it does not know, silently.
var runtimeStatuses = []string{"Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Suspended"}

// addStatusFilter checks a comma-separated list of statuses, fixes their case, and sets
// runtimeStatus. Unknown names are a usage error, not an empty result.
func addStatusFilter(q url.Values, list string) error {
	if list == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		found := ""
		for _, known := range runtimeStatuses {
			if strings.EqualFold(s, known) {
				found = known
			}
		}
		if found == "" {
			return usagef("unknown status %q in --status; use %s", s, strings.Join(runtimeStatuses, ", "))
		}
		out = append(out, found)
	}
	if len(out) > 0 {
		q.Set("runtimeStatus", strings.Join(out, ","))
	}
	return nil
}

// addTimeFilter parses a time flag and sets the parameter in RFC 3339 UTC.
func addTimeFilter(q url.Values, param, flagName, value string) error {
	if value == "" {
		return nil
	}
	t, err := parseTime(value, time.Now())
	if err != nil {
		return usagef("%s: %v", flagName, err)
	}
	// Hosts refuse dates out of the stores' range (0001-01-01, Go's zero time, included).
	if t.Before(store.MinTime()) || t.After(store.MaxTime()) {
		return usagef("%s: %s is outside the supported range %s to %s", flagName, t.UTC().Format(time.RFC3339Nano),
			store.MinTime().Format(time.DateOnly), store.MaxTime().Format(time.DateOnly))
	}
	q.Set(param, t.UTC().Format(time.RFC3339Nano))
	return nil
}

// parseTime reads a time flag: RFC 3339, a date (midnight UTC), "now", or a signed duration
// relative to now (-24h, -90m, -7d; +1h for the future). An unsigned duration is refused, since
// "24h" could mean either direction.
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d, err := parseDuration(s)
		if err == nil {
			return now.Add(d), nil
		}
	} else if _, err := parseDuration(s); err == nil {
		return time.Time{}, fmt.Errorf("%q has no sign: write -%s for that long ago", s, s)
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02), now, or a duration from now such as -24h or -7d", s)
}

// parseDuration is time.ParseDuration plus whole days ("7d", "-7d"), the unit people use for
// retention.
func parseDuration(s string) (time.Duration, error) {
	if body, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(body)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
