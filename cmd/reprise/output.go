package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// object is one JSON object from the host, kept as raw values so that keys this program does not
// know (a newer host's, another vendor's) are shown rather than dropped.
type object map[string]json.RawMessage

// lookupKey finds key in obj, falling back to a case-insensitive match: Durable Functions sends
// PascalCase in history events and camelCase elsewhere, and other hosts vary.
func lookupKey(obj map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// str returns the string value of key, or "" when it is missing or not a string.
func (o object) str(key string) string {
	raw, ok := lookupKey(o, key)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// writeJSON prints a JSON document from the host as it came, ending with a newline, so that
// --json output pipes straight into jq.
func writeJSON(w io.Writer, doc []byte) {
	doc = bytes.TrimSpace(doc)
	if len(doc) == 0 {
		return
	}
	w.Write(doc)
	io.WriteString(w, "\n")
}

// prettyJSON indents a JSON value for reading; a value that is not valid JSON is shown as text.
func prettyJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return sanitize(string(raw))
	}
	return buf.String()
}

// compactJSON puts a JSON value on one line, for table cells.
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return sanitize(string(raw))
	}
	return buf.String()
}

// sanitize replaces control characters, so that text from the host can neither break a table
// (tabs, newlines) nor send escape sequences to the terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// displayTime formats a time from the host in UTC at the given layout; a value that does not
// parse is shown as it came.
func displayTime(s, layout string) string {
	if s == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return sanitize(s)
	}
	return t.UTC().Format(layout)
}

const (
	secondLayout = "2006-01-02T15:04:05Z"
	milliLayout  = "2006-01-02T15:04:05.000Z"
)

// Column widths for JSON in tables: enough to recognise a value, short enough for a terminal.
const (
	inputCellWidth   = 60
	detailsCellWidth = 120
)

// table is a tabwriter whose output loses the padding after the last column, which tabwriter
// leaves behind when that column is empty.
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

// Flush writes the table.
func (t *table) Flush() {
	t.Writer.Flush()
	for line := range strings.Lines(t.buf.String()) {
		io.WriteString(t.out, strings.TrimRight(line, " \n")+"\n")
	}
	t.buf.Reset()
}

// printInstanceTable prints status payloads as an aligned table.
func printInstanceTable(w io.Writer, instances []object, showInput bool) {
	tw := newTable(w)
	// A VERSION column only when an instance has a version (a key of Reprise hosts): apps that
	// do not version their orchestrations keep the table they know.
	withVersion := slices.ContainsFunc(instances, func(o object) bool { return o.str("version") != "" })
	header := "INSTANCE ID\tNAME\tSTATUS\tCREATED\tUPDATED"
	if withVersion {
		header += "\tVERSION"
	}
	if showInput {
		header += "\tINPUT"
	}
	fmt.Fprintln(tw, header)
	for _, inst := range instances {
		row := []string{
			sanitize(inst.str("instanceId")),
			sanitize(inst.str("name")),
			sanitize(inst.str("runtimeStatus")),
			displayTime(inst.str("createdTime"), secondLayout),
			displayTime(inst.str("lastUpdatedTime"), secondLayout),
		}
		if withVersion {
			row = append(row, truncate(sanitize(inst.str("version")), inputCellWidth))
		}
		if showInput {
			in, _ := lookupKey(inst, "input")
			row = append(row, truncate(compactJSON(in), inputCellWidth))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// statusFields are the status payload's keys in reading order; the values of the first five are
// plain text, the rest JSON.
var statusFields = []string{"instanceId", "name", "version", "runtimeStatus", "createdTime", "lastUpdatedTime", "input", "output", "customStatus"}

const plainStatusFields = 6

// printStatus prints a status payload as a "key: value" block under the host's own key names, so
// what the user reads is what --json and the HTTP API documentation call it. JSON values that
// need several lines start on the next line, indented. historyEvents is left to
// printHistoryTable.
func printStatus(w io.Writer, st object) {
	keys := make([]string, 0, len(st))
	for _, k := range statusFields {
		raw, ok := lookupKey(st, k)
		if !ok {
			continue
		}
		// input is null both when the instance has none and when it was not asked for; it
		// says nothing either way, so it is left out.
		if k == "input" && isNull(raw) {
			continue
		}
		keys = append(keys, k)
	}
	var extra []string
	for k := range st {
		if !slices.ContainsFunc(statusFields, func(f string) bool { return strings.EqualFold(f, k) }) && !strings.EqualFold(k, "historyEvents") {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	keys = append(keys, extra...)

	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	for _, k := range keys {
		raw, _ := lookupKey(st, k)
		var value string
		var s string
		if json.Unmarshal(raw, &s) == nil && slices.Index(statusFields, k) < plainStatusFields {
			value = sanitize(s)
			if strings.HasSuffix(k, "Time") {
				value = displayTime(s, secondLayout)
			}
		} else {
			value = prettyJSON(raw)
		}
		if strings.Contains(value, "\n") {
			fmt.Fprintf(w, "%s:\n%s\n", k, indent(value, "  "))
			continue
		}
		fmt.Fprintf(w, "%-*s %s\n", width+1, k+":", value)
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// printHistoryTable prints history events (EventType, Timestamp, FunctionName and event-specific
// fields; docs/compat/durable-functions-http.md §7) one per row.
func printHistoryTable(w io.Writer, events []object) {
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tEVENT\tNAME\tDETAILS")
	for _, ev := range events {
		name := ev.str("FunctionName")
		if name == "" {
			name = ev.str("Name")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n",
			displayTime(ev.str("Timestamp"), milliLayout),
			sanitize(ev.str("EventType")),
			sanitize(name),
			truncate(eventDetails(ev), detailsCellWidth))
	}
	tw.Flush()
}

// detailFields are the history event fields shown in the DETAILS column, in this order, and
// the keys they are shown as. Fields not listed here are appended under their own name; those in
// shownElsewhere are not.
var detailFields = []struct{ key, label string }{
	{"OrchestrationStatus", "status"},
	{"InstanceId", "instance"},
	{"Input", "input"},
	{"Result", "result"},
	{"Reason", "reason"},
	{"FailureDetails", "error"},
	{"Details", "details"},
	{"FireAt", "fireAt"},
}

var shownElsewhere = []string{"EventType", "Timestamp", "FunctionName", "Name", "ScheduledTime"}

// eventDetails summarises what is specific to one history event on one line.
func eventDetails(ev object) string {
	var parts []string
	used := map[string]bool{}
	for _, f := range detailFields {
		raw, ok := lookupKey(ev, f.key)
		if !ok {
			continue
		}
		used[strings.ToLower(f.key)] = true
		if isNull(raw) {
			continue
		}
		var value string
		switch f.key {
		case "OrchestrationStatus", "Reason":
			value = compactText(raw)
		case "FailureDetails":
			value = failureText(raw)
			// TaskFailed carries the message twice, as Reason and inside FailureDetails.
			if reason, ok := lookupKey(ev, "Reason"); ok && strings.HasSuffix(value, compactText(reason)) {
				parts = slices.DeleteFunc(parts, func(p string) bool { return strings.HasPrefix(p, "reason=") })
			}
		case "FireAt":
			var s string
			json.Unmarshal(raw, &s)
			value = displayTime(s, milliLayout)
		default:
			value = compactJSON(raw)
		}
		parts = append(parts, f.label+"="+value)
	}
	// How long a task took from being scheduled to its completion: the first thing people look
	// for in a slow orchestration.
	if sched, ts := ev.str("ScheduledTime"), ev.str("Timestamp"); sched != "" && ts != "" {
		t0, err0 := time.Parse(time.RFC3339Nano, sched)
		t1, err1 := time.Parse(time.RFC3339Nano, ts)
		if err0 == nil && err1 == nil && !t1.Before(t0) {
			parts = append(parts, "after "+roundDuration(t1.Sub(t0)).String())
		}
	}
	var rest []string
	for k, raw := range ev {
		lk := strings.ToLower(k)
		if used[lk] || isNull(raw) || slices.ContainsFunc(shownElsewhere, func(s string) bool { return strings.EqualFold(s, k) }) {
			continue
		}
		rest = append(rest, lowerFirst(k)+"="+compactText(raw))
	}
	slices.Sort(rest)
	return sanitize(strings.Join(append(parts, rest...), " "))
}

// compactText shows a JSON string without quotes and anything else as compact JSON.
func compactText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return compactJSON(raw)
}

// failureText renders FailureDetails ({ErrorType, ErrorMessage, ...}) as "type: message".
func failureText(raw json.RawMessage) string {
	var fd object
	if json.Unmarshal(raw, &fd) != nil {
		return compactJSON(raw)
	}
	typ := firstNonEmpty(fd.str("ErrorType"), fd.str("type"))
	msg := firstNonEmpty(fd.str("ErrorMessage"), fd.str("message"))
	switch {
	case typ != "" && msg != "":
		return typ + ": " + msg
	case msg != "":
		return msg
	case typ != "":
		return typ
	}
	return compactJSON(raw)
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// roundDuration keeps three significant places or so: 1.234s, 12ms, 250µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond / 10)
	}
	return d.Round(time.Microsecond)
}

// shellQuote quotes s for a POSIX shell, for hints the user may paste.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.:/=+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plural returns "1 instance" or "3 instances".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
