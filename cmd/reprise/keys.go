package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"

	"github.com/reprise-dev/reprise"
)

const keysUsage = `Usage: reprise keys [--store S] [--hub NAME] [--json]

Prints the master and system keys a Reprise host generated and keeps in its store, for its task
hub. A host generates them at its first start when its configuration sets none (REPRISE_MASTER_KEY,
REPRISE_SYSTEM_KEY, reprise.WithKeys) and uses the same ones after every restart. It reads the store
as a host started here would: --store, else REPRISE_STORE, else host.json, else reprise.db in the
working directory; the hub from --hub, else REPRISE_HUB, else host.json, else "default". Run it
where the app runs. It changes nothing and needs no running host.

The system key opens the management API (pass it to this program with --key or REPRISE_KEY); the
master key opens every route, the management API and the dashboard.

Flags:
  --store S    SQLite file or postgres:// DSN of the host's store
  --hub NAME   task hub (env REPRISE_HUB)
  --json       print {"store", "hub", "masterKey", "systemKey"}

Exit codes: 0 printed, 3 no such store or no generated keys in it, 1 the store could not be read,
2 usage error.
`

// runKeys is `reprise keys`. Like bench, it reads a store, not a host's API.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	flags := newFlagSet("reprise keys")
	storeFlag := flags.String("store", getenv("REPRISE_STORE"), "")
	hub := flags.String("hub", getenv("REPRISE_HUB"), "")
	asJSON := flags.Bool("json", false, "")
	rest, err := parseArgs(flags, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("keys takes no arguments, got %q", rest)
	}
	if err != nil {
		return reportUsage(stderr, err.Error(), keysUsage)
	}
	var opts []reprise.Option
	switch {
	case isPostgresDSN(*storeFlag):
		opts = append(opts, reprise.WithPostgres(*storeFlag))
	case *storeFlag != "":
		opts = append(opts, reprise.WithSQLiteFile(*storeFlag))
	}
	if *hub != "" {
		opts = append(opts, reprise.WithHub(*hub))
	}
	keys, err := reprise.ReadGeneratedKeys(ctx, opts...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, fs.ErrNotExist) {
			return exitNotFound
		}
		return exitHostError
	}
	if keys.Master == "" && keys.System == "" {
		fmt.Fprintf(stderr, "reprise: no generated keys in task hub %q of %s: no host has started on this hub yet, or its hosts "+
			"are configured with their keys (REPRISE_MASTER_KEY, REPRISE_SYSTEM_KEY); check --store and --hub\n", keys.Hub, keys.Store)
		return exitNotFound
	}
	if *asJSON {
		out, _ := json.MarshalIndent(map[string]string{"store": keys.Store, "hub": keys.Hub, "masterKey": keys.Master, "systemKey": keys.System}, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return exitOK
	}
	show := func(k string) string {
		if k == "" {
			return "(none generated: the host's configuration sets it, or the management API is anonymous)"
		}
		return k
	}
	fmt.Fprintf(stdout, "task hub %s in %s\n", keys.Hub, keys.Store)
	fmt.Fprintf(stdout, "master key  %s\n", show(keys.Master))
	fmt.Fprintf(stdout, "system key  %s\n", show(keys.System))
	fmt.Fprintln(stdout, "\nPass one to this program with --key or REPRISE_KEY; the master key also opens the dashboard.")
	return exitOK
}
