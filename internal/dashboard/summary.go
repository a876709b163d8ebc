package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// summaryLimit bounds a bar's input summary, so that a label keeps to about one line.
const summaryLimit = 48

// summarize returns a short text that tells apart inputs of one activity: a string or number as
// it is, an object as its first fields (`city: "Tokyo", n: 2, …`), an array by its first items.
// Nested objects and arrays show as {…} and […]. "" for no input or null.
func summarize(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return cut(string(raw), summaryLimit) // not JSON: shown as stored
	}
	var b strings.Builder
	switch v := v.(type) {
	case map[string]any:
		// Fields in the order of the JSON text, which json.Unmarshal into a map loses.
		keys := objectKeys(raw)
		list(&b, len(keys), func(i int) string { return keys[i] + ": " + scalar(v[keys[i]]) })
		if len(keys) == 0 {
			b.WriteString("{}")
		}
	case []any:
		b.WriteString("[")
		list(&b, len(v), func(i int) string { return scalar(v[i]) })
		b.WriteString("]")
	default:
		b.WriteString(scalar(v))
	}
	return cut(b.String(), summaryLimit+16)
}

// list writes the n items item returns, separated by commas, until b reaches summaryLimit; then
// an ellipsis stands for the rest.
func list(b *strings.Builder, n int, item func(i int) string) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len() >= summaryLimit {
			b.WriteString("…")
			return
		}
		b.WriteString(item(i))
	}
}

// scalar shows a JSON value in a summary: strings quoted and cut, containers elided.
func scalar(v any) string {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return "{}"
		}
		return "{…}"
	case []any:
		if len(v) == 0 {
			return "[]"
		}
		return fmt.Sprintf("[…%d]", len(v))
	case string:
		return strconv.Quote(cut(v, 24))
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// objectKeys returns the keys of a JSON object in the order they are written.
func objectKeys(raw []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// cut shortens s to at most n bytes on a character boundary, marking the cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
