// Command reprise manages the orchestration instances and durable entities of a running Reprise
// host (or any host that serves the Azure Durable Functions management API) from the command
// line: list, show, raise events, terminate, suspend, resume, restart, rewind and purge
// instances, start new ones, and list, show, signal and clean entities.
// `reprise bench` runs the standard workloads on a store, in-process, and measures them;
// `reprise keys` prints the keys a host generated and keeps in its store. `reprise serve` runs a
// standalone server: the Durable Task gRPC protocol, the management API and the dashboard.
//
// The instance and entity commands talk only HTTP to the host's /runtime/webhooks/durabletask routes (or,
// without a key on this machine, its loopback /durabletask routes), like the `func durable`
// commands of the Azure Functions Core Tools, so they need no access to the store and work the
// same against a local process or a remote deployment.
//
// Run `reprise help` for the commands, flags and exit codes; docs/cli.md has example sessions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// Exit codes. Scripts rely on them, so they are part of the interface: never renumber.
const (
	exitOK          = 0 // success
	exitHostError   = 1 // the host answered with an error not covered below (400, 5xx, unexpected)
	exitUsage       = 2 // bad flags or arguments, invalid JSON given
	exitNotFound    = 3 // the instance or entity (or the management API) was not found: 404
	exitState       = 4 // the instance's state does not allow the operation: 409, 410, 412
	exitUnreachable = 5 // connection failed or timed out, or the key was refused: 401, 403
	exitEndedBadly  = 6 // start-new --wait: the instance ended Failed, Terminated or Canceled
	exitStillActive = 7 // start-new --wait: the wait ran out while the instance still runs
)

// Defaults of the global options, when neither a flag nor the environment sets them.
const (
	defaultURL     = "http://127.0.0.1:7071"
	defaultTimeout = 30 * time.Second
)

func main() {
	// Ctrl-C cancels the request in flight instead of killing the process mid-write, so the
	// user still gets a message saying what happened; SIGTERM too, so that `reprise serve`
	// shuts down gracefully under a process manager.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is the whole program with its environment passed in, so that tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{}
	g.setDefaults(getenv)

	// Global flags may come before the command, between "instances" and its subcommand, or
	// among the command's own arguments: each of these flag sets defines them.
	fs := newFlagSet("reprise")
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return reportUsage(stderr, err.Error(), usageText)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}

	cmdName, cmdArgs := rest[0], rest[1:]
	var cmd *command
	switch cmdName {
	case "help", "-h", "--help":
		return runHelp(cmdArgs, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "start-new":
		cmd = startNewCommand
	case "bench":
		return runBench(ctx, cmdArgs, stdout, stderr)
	case "keys":
		return runKeys(ctx, cmdArgs, stdout, stderr, getenv)
	case "serve":
		return runServe(ctx, cmdArgs, stdout, stderr, getenv)
	case "bench-worker": // started by bench --hosts N; not in the usage
		return runBenchWorker(ctx, cmdArgs, os.Stdin, stdout, stderr)
	case "entities", "entity":
		efs := newFlagSet("reprise entities")
		g.register(efs)
		if err := efs.Parse(cmdArgs); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, entitiesUsage)
				return exitOK
			}
			return reportUsage(stderr, err.Error(), entitiesUsage)
		}
		cmdArgs = efs.Args()
		if len(cmdArgs) == 0 {
			return reportUsage(stderr, "entities needs a subcommand", entitiesUsage)
		}
		sub := cmdArgs[0]
		if sub == "help" || sub == "-h" || sub == "--help" {
			fmt.Fprint(stdout, entitiesUsage)
			return exitOK
		}
		cmd = entityCommands[sub]
		if cmd == nil {
			return reportUsage(stderr, fmt.Sprintf("unknown command %q", "entities "+sub), entitiesUsage)
		}
		cmdArgs = cmdArgs[1:]
	case "instances", "instance":
		ifs := newFlagSet("reprise instances")
		g.register(ifs)
		if err := ifs.Parse(cmdArgs); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, instancesUsage)
				return exitOK
			}
			return reportUsage(stderr, err.Error(), instancesUsage)
		}
		cmdArgs = ifs.Args()
		if len(cmdArgs) == 0 {
			return reportUsage(stderr, "instances needs a subcommand", instancesUsage)
		}
		sub := cmdArgs[0]
		if sub == "help" || sub == "-h" || sub == "--help" {
			fmt.Fprint(stdout, instancesUsage)
			return exitOK
		}
		cmd = instanceCommands[sub]
		if cmd == nil {
			return reportUsage(stderr, fmt.Sprintf("unknown command %q", "instances "+sub), instancesUsage)
		}
		cmdArgs = cmdArgs[1:]
	default:
		return reportUsage(stderr, fmt.Sprintf("unknown command %q", cmdName), usageText)
	}
	return cmd.execute(ctx, g, cmdArgs, stdout, stderr)
}

// globals are the options every command shares.
type globals struct {
	url     string
	key     string
	hub     string
	json    bool
	timeout time.Duration
}

func (g *globals) setDefaults(getenv func(string) string) {
	g.url = firstNonEmpty(getenv("REPRISE_URL"), defaultURL)
	g.key = getenv("REPRISE_KEY")
	g.hub = getenv("REPRISE_HUB")
	g.timeout = defaultTimeout
}

// register defines the global flags on fs with the current values as defaults, so registering
// them on a second flag set after the first was parsed keeps what the first one set.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "host base URL")
	fs.StringVar(&g.key, "key", g.key, "system or master key")
	fs.StringVar(&g.hub, "hub", g.hub, "task hub")
	fs.BoolVar(&g.json, "json", g.json, "print the host's JSON")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "request timeout")
}

// command is one leaf command: its usage line and help, its own flags, and what it does.
type command struct {
	name  string // as typed: "instances show", "start-new"
	usage string // synopsis and help text, printed for -h and after usage errors
	// flags defines the command's own flags on fs and returns the function that runs it once
	// the flags and positional arguments are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

func (c *command) execute(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(c.name)
	g.register(fs)
	runCmd := c.flags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, c.usage)
			return exitOK
		}
		return reportUsage(stderr, err.Error(), c.usage)
	}
	if g.timeout <= 0 {
		return reportUsage(stderr, "--timeout must be positive", c.usage)
	}
	api, err := newAPIClient(g.url, g.key, g.hub, g.timeout)
	if err != nil {
		return reportUsage(stderr, err.Error(), c.usage)
	}
	e := &env{api: api, g: g, stdout: stdout, stderr: stderr}
	err = runCmd(ctx, e, pos)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return reportUsage(stderr, ue.msg, c.usage)
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.msg != "" {
			fmt.Fprintln(stderr, "reprise: "+xe.msg)
		}
		return xe.code
	}
	// Every failure path is meant to be classified; this is the safety net.
	fmt.Fprintln(stderr, "reprise: "+err.Error())
	return exitHostError
}

// newFlagSet returns a flag set that reports errors to the caller instead of printing them, so
// that all messages share one format.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses flags wherever they appear among the positional arguments (the flag package
// alone stops at the first positional one), so `instances show ID --history` works. Everything
// after "--" is positional, which is how to pass data that starts with "-", such as -5.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		before := len(args)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:before-len(rest)]
		if n := len(consumed); n > 0 && consumed[n-1] == "--" && !flagTakesValue(fs, consumed, n-1) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagTakesValue reports whether args[i] is the value of the flag before it (as in
// `--reason --`) rather than the "--" terminator.
func flagTakesValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") || prev == "--" {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !bf.IsBoolFlag()
}

// usageError is a mistake in how the command was called: exit code 2, with the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// exitError ends the command with a message (may be empty) and an exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func reportUsage(stderr io.Writer, msg, usage string) int {
	fmt.Fprintln(stderr, "reprise: "+msg)
	fmt.Fprint(stderr, "\n"+usage)
	return exitUsage
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	topic := strings.Join(args, " ")
	switch {
	case topic == "instances" || topic == "instance":
		fmt.Fprint(stdout, instancesUsage)
		return exitOK
	case topic == "entities" || topic == "entity":
		fmt.Fprint(stdout, entitiesUsage)
		return exitOK
	case len(args) == 2 && (args[0] == "entities" || args[0] == "entity") && entityCommands[args[1]] != nil:
		fmt.Fprint(stdout, entityCommands[args[1]].usage)
		return exitOK
	case topic == "start-new":
		fmt.Fprint(stdout, startNewCommand.usage)
		return exitOK
	case topic == "bench":
		fmt.Fprint(stdout, benchUsage)
		return exitOK
	case topic == "keys":
		fmt.Fprint(stdout, keysUsage)
		return exitOK
	case topic == "serve":
		fmt.Fprint(stdout, serveUsage)
		return exitOK
	case len(args) == 2 && (args[0] == "instances" || args[0] == "instance") && instanceCommands[args[1]] != nil:
		fmt.Fprint(stdout, instanceCommands[args[1]].usage)
		return exitOK
	}
	return reportUsage(stderr, fmt.Sprintf("no help for %q", topic), usageText)
}

// versionString names the module version the binary was built from: a tag for
// `go install ...@v1.2.3`, "(devel)" for a build from a checkout.
func versionString() string {
	v := "(unknown)"
	goVersion := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v, goVersion = bi.Main.Version, bi.GoVersion
	}
	return strings.TrimSpace("reprise " + v + " " + goVersion)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

const usageText = `reprise manages orchestration instances through a host's Durable Functions management API
(/runtime/webhooks/durabletask): a Reprise host, or any Durable Functions-compatible one.

Usage:
  reprise [global flags] <command> [arguments] [flags]

Commands:
  instances list      [--status S,...] [--prefix ID] [--created-from T] [--created-to T]
                      [--version V ...] [--top N] [--order newest|oldest] [--all]
                      [--continuation TOKEN] [--show-input]
  instances show      ID [--history] [--history-output] [--no-input]
  instances history   ID [--output]
  instances raise     ID EVENT [DATA-JSON | --data-file F]
  instances terminate ID [--reason R]
  instances suspend   ID [--reason R]
  instances resume    ID [--reason R]
  instances restart   ID [--same-id]
  instances rewind    ID [--reason R]
  instances purge     ID
  instances purge     --created-from T [--created-to T] [--status S,...]
  start-new           NAME [--id ID] [--version V] [--input JSON | --input-file F] [--wait]
  entities list       [--name NAME] [--from T] [--to T] [--top N] [--state] [--all]
                      [--continuation TOKEN]
  entities show       NAME KEY
  entities signal     NAME KEY OP [--input JSON | --input-file F]
  entities clean      [--remove-empty] [--release-locks] [--empty-for D]
  bench               [scenario ...] [-n N] [--duration D] [--store PATH] [--json]
                      run the standard workloads in this process (see reprise help bench)
  bench grpc          [--backends reprise,sidecar] [--workers go,js] [-n N] [--json]
                      the hello sequence in Durable Task SDK workers over gRPC (--help)
  keys                [--store S] [--hub NAME] [--json]
                      print the keys a local host generated and keeps in its store
  serve               [--store S] [--hub NAME] [--addr HOST:PORT] [--grpc HOST:PORT]
                      run a standalone server: Durable Task gRPC, management API and dashboard
                      (see reprise help serve)
  version             print the version of this program
  help [command]      print this help, or a command's

Global flags (anywhere on the command line):
  --url URL       host base URL (env REPRISE_URL, default http://127.0.0.1:7071); a URL that
                  already ends in /runtime/webhooks/durabletask or /durabletask is used as is
  --key KEY       system or master key, sent as header x-functions-key (env REPRISE_KEY)
  --hub NAME      task hub, sent as query parameter taskHub (env REPRISE_HUB; default: the host's)
  --json          print the host's JSON answer, one document, instead of text
  --timeout D     how long to wait for the host to answer (default 30s); for start-new --wait,
                  how long to wait for the instance to finish

Times (T) are RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02, midnight UTC), "now", or a
duration relative to now: -24h, -90m, -7d.
Statuses (S): Pending, Running, Completed, ContinuedAsNew, Failed, Canceled, Terminated, Suspended.
Put "--" before arguments that start with "-", e.g. reprise instances raise ID amount -- -5

Exit codes:
  0  success
  1  the host answered with an error not listed below (400, 5xx, unexpected)
  2  usage error: bad flags or arguments, invalid JSON given
  3  not found (404): no such instance or entity
  4  the instance's state does not allow the operation (409, 410, 412)
  5  host unreachable or timed out, or the key was refused (401, 403)
  6  start-new --wait: the instance ended Failed, Terminated or Canceled
  7  start-new --wait: the wait timed out while the instance still runs
`

const instancesUsage = `Usage: reprise instances <command> ID [arguments] [flags]

Commands:
  list       list instances, filtered and paged
  show       show an instance's status, input, output and custom status
  history    show an instance's history as a table
  export     export stored histories as JSON, for replay checks in CI
  raise      raise an external event on an instance
  terminate  terminate an instance
  suspend    suspend an instance
  resume     resume a suspended instance
  restart    start an instance's orchestrator again with the same input
  rewind     rerun the failed parts of a Failed instance
  purge      delete finished instances and their history

Run reprise help instances <command> for its flags, reprise help for global flags and exit codes.
`
