package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprise-dev/reprise/store"
)

// defaultExportStatuses are the instances whose histories new code may still have to replay:
// those that run on, and the failed ones, which a rewind replays.
const defaultExportStatuses = "Running,Suspended,Failed"

var exportCommand = &command{
	name: "instances export",
	usage: `Usage: reprise instances export ID [--out FILE]
       reprise instances export --dir DIR [--name NAME] [--status S,...] [--prefix ID]
                                [--created-from T] [--created-to T]

Export the stored history of instances' current executions, every field kept, as JSON: the
input of reprise.ReplayHistory and reprisetest.CheckReplay, which check in CI that changed
orchestrator code still replays the instances running in production (docs/patching.md). Needs a
Reprise host: the route (GET instances/{id}/history) is Reprise's own.

With an ID, the history goes to stdout, or to FILE. With --dir, every instance the filters
select is written to DIR/<instance ID>.json (characters other than letters, digits, '-', '_'
and '.' are written as %XX), replacing files of the same name; instances that have no history
yet (Pending) are skipped.

Flags:
  --out FILE             write the history of ID to FILE instead of stdout
  --dir DIR              export the instances the filters select into DIR (created if needed)
  --name NAME            only instances of this orchestrator (any case)
  --status S,...         only these runtime statuses; default ` + defaultExportStatuses + `,
                         the instances that may still replay
  --prefix ID            only instance IDs starting with this
  --created-from T       only instances created at or after T (RFC 3339, a date, or -24h)
  --created-to T         only instances created at or before T
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		out := fs.String("out", "", "")
		dir := fs.String("dir", "", "")
		name := fs.String("name", "", "")
		status := fs.String("status", "", "")
		prefix := fs.String("prefix", "", "")
		from := fs.String("created-from", "", "")
		to := fs.String("created-to", "", "")
		return func(ctx context.Context, e *env, args []string) error {
			filtered := *name != "" || *status != "" || *prefix != "" || *from != "" || *to != ""
			if *dir == "" {
				if filtered {
					return usagef("--name, --status, --prefix, --created-from and --created-to select instances for --dir; give --dir DIR, or one instance ID alone")
				}
				id, err := oneID("instances export", args)
				if err != nil {
					return err
				}
				return e.exportOne(ctx, id, *out)
			}
			if len(args) > 0 {
				return usagef("instances export --dir takes no instance IDs (got %q): filter with --name, --status, --prefix, --created-from, --created-to", args)
			}
			if *out != "" {
				return usagef("--out is for one instance ID; --dir writes one file per instance")
			}
			q := url.Values{}
			st := *status
			if st == "" {
				st = defaultExportStatuses
			}
			if err := addStatusFilter(q, st); err != nil {
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
			if err := checkText("--name", *name, store.MaxKeyBytes); err != nil {
				return err
			}
			if *prefix != "" {
				q.Set("instanceIdPrefix", *prefix)
			}
			return e.exportMany(ctx, q, *name, *dir)
		}
	},
}

// fetchHistory reads GET instances/{id}/history, the exported history.
func (e *env) fetchHistory(ctx context.Context, id string) ([]byte, error) {
	resp, err := e.api.do(ctx, request{method: http.MethodGet, path: instancePath(id, "history"), ok: []int{http.StatusOK}})
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && se.status == http.StatusNotFound {
			// The instance may exist on a host without the route (Durable Functions): say so,
			// rather than that the instance is missing.
			if _, _, serr := e.getStatus(ctx, id, false, false, false); serr == nil {
				return nil, &exitError{exitNotFound, fmt.Sprintf("cannot export %s: the host has no history export route "+
					"(GET instances/{id}/history, Reprise's own): export from a Reprise host", sanitize(id))}
			}
		}
		return nil, e.failure(err, "export", id)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(resp.body, &events); err != nil {
		return nil, &exitError{exitHostError, fmt.Sprintf("the host's history of instance %s is not a JSON array: %v", sanitize(id), err)}
	}
	return resp.body, nil
}

func (e *env) exportOne(ctx context.Context, id, out string) error {
	data, err := e.fetchHistory(ctx, id)
	if err != nil {
		return err
	}
	if out == "" {
		_, err := e.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return &exitError{exitHostError, fmt.Sprintf("cannot write the history of %s: %v", sanitize(id), err)}
	}
	fmt.Fprintf(e.stdout, "exported %s to %s\n", sanitize(id), out)
	return nil
}

// exportMany exports every instance of the listing q (all pages) whose orchestrator is name
// ("" for any) into dir.
func (e *env) exportMany(ctx context.Context, q url.Values, name, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &exitError{exitUsage, fmt.Sprintf("cannot create --dir %s: %v", dir, err)}
	}
	q.Set("showInput", "false")
	q.Set("top", "1000")
	q.Set("order", "oldest")
	files := map[string]string{} // lower-cased file name → instance ID, for case-insensitive file systems
	exported, skipped := 0, 0
	token := ""
	seen := map[string]bool{}
	for {
		var header http.Header
		if token != "" {
			header = http.Header{continuationHeader: {token}}
		}
		resp, err := e.api.do(ctx, request{method: http.MethodGet, path: "/instances", query: q, header: header, ok: []int{http.StatusOK}})
		if err != nil {
			return e.failure(err, "list instances", "")
		}
		var page []object
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return &exitError{exitHostError, fmt.Sprintf("the host's answer to GET /instances is not a JSON array of objects: %v", err)}
		}
		for _, inst := range page {
			id := inst.str("instanceId")
			if id == "" || name != "" && !strings.EqualFold(inst.str("name"), name) {
				continue
			}
			if strings.EqualFold(inst.str("runtimeStatus"), "Pending") {
				skipped++
				continue
			}
			file := exportFileName(id)
			if other, ok := files[strings.ToLower(file)]; ok {
				return &exitError{exitHostError, fmt.Sprintf("instances %s and %s differ only in case: their files would be one on some file systems; "+
					"export them one at a time with --out", sanitize(other), sanitize(id))}
			}
			files[strings.ToLower(file)] = id
			data, err := e.fetchHistory(ctx, id)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, file)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return &exitError{exitHostError, fmt.Sprintf("cannot write the history of %s: %v", sanitize(id), err)}
			}
			fmt.Fprintf(e.stdout, "exported %s (%s, %s) to %s\n", sanitize(id), sanitize(inst.str("name")), sanitize(inst.str("runtimeStatus")), path)
			exported++
		}
		token = resp.header.Get(continuationHeader)
		if token == "" {
			break
		}
		if seen[token] {
			return &exitError{exitHostError, "the host returned the same continuation token twice; stopping"}
		}
		seen[token] = true
	}
	fmt.Fprintf(e.stdout, "exported %s to %s", plural(exported, "instance"), dir)
	if skipped > 0 {
		fmt.Fprintf(e.stdout, "; skipped %s without history yet (Pending)", plural(skipped, "instance"))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// exportFileName names the file of an instance's history: the ID with every byte other than
// ASCII letters, digits, '-', '_' and '.' written as %XX, so that any ID (host limits allow '/',
// ':', spaces) is one portable file name, and the ID can be read back from it. A leading '.' is
// escaped too, so that no file is hidden.
func exportFileName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String() + ".json"
}
