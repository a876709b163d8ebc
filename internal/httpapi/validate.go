package httpapi

import (
	"fmt"
	"strings"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/store"
)

// maxReasonBytes bounds the reason of a command, as the control plane does.
const maxReasonBytes = control.MaxReasonBytes

// checkRequestText refuses, before anything is routed, text that the management API would pass
// on to the store: path segments (instance IDs, orchestrator and event names), the free-text
// query parameters and the continuation token must be UTF-8 without NUL, within a length. A
// non-UTF-8 instance ID used to be started and then claimed for ever; the other parameters are
// numbers, dates, booleans or statuses, refused when they do not parse.
func checkRequestText(segs []string, q query, token string) error {
	for _, s := range segs {
		if err := store.CheckText("URL path segment", s, store.MaxKeyBytes); err != nil {
			return fmt.Errorf("%w (instance IDs, orchestrator and event names must be UTF-8 without NUL)", err)
		}
	}
	for _, p := range [...]struct {
		name string
		max  int
	}{{"reason", maxReasonBytes}, {"instanceIdPrefix", store.MaxKeyBytes}, {"taskHub", store.MaxKeyBytes}, {"version", store.MaxKeyBytes}} {
		for _, v := range q[strings.ToLower(p.name)] {
			if err := store.CheckText("query parameter '"+p.name+"'", v, p.max); err != nil {
				return err
			}
		}
	}
	if err := store.CheckText("continuation token ("+continuationHeader+" header)", token, 4*store.MaxKeyBytes); err != nil {
		return fmt.Errorf("%w; pass back the token of a previous page unchanged", err)
	}
	return nil
}
