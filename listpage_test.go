package reprise_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/hosttest"
	"github.com/reprise-dev/reprise/internal/httpapi"
)

var bigInput = reprise.NewOrchestrator("big_input", func(ctx *reprise.OrchestrationContext, in string) (int, error) {
	return len(in), nil
})

// TestListPagesAreBoundedByBytes: instances with large inputs fill a page's byte bound long
// before top; the page ends early with a token, and following the tokens lists every instance
// exactly once.
func TestListPagesAreBoundedByBytes(t *testing.T) {
	app := reprise.NewApp(append(hosttest.Options(t), reprise.WithAnonymousManagement())...)
	app.Register(bigInput)
	srv := hosttest.Serve(t, app)
	const n, inputSize = 60, 100 << 10 // 6 MB of inputs, over the 4 MiB bound
	want := map[string]bool{}
	for i := range n {
		input := strings.Repeat(string(rune('a'+i%26)), inputSize)
		id, err := bigInput.Start(context.Background(), app.Client(), input)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	seen := map[string]bool{}
	token, pages := "", 0
	for {
		req, _ := http.NewRequest("GET", srv.URL+"/runtime/webhooks/durabletask/instances?top=1000", nil)
		if token != "" {
			req.Header.Set("x-ms-continuation-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []struct {
			InstanceID string          `json:"instanceId"`
			Input      json.RawMessage `json:"input"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages+1, resp.StatusCode, err)
		}
		pages++
		size := 0
		for _, s := range page {
			if seen[s.InstanceID] || !want[s.InstanceID] {
				t.Fatalf("page %d lists %q, listed before or never started", pages, s.InstanceID)
			}
			seen[s.InstanceID] = true
			size += len(s.Input)
		}
		token = resp.Header.Get("x-ms-continuation-token")
		// A page ends with the instance that reaches the bound: at most one instance over it.
		if size > httpapi.DefaultMaxPageBytes+inputSize+1024 {
			t.Errorf("page %d holds %d bytes of inputs, over the bound of %d and one instance", pages, size, httpapi.DefaultMaxPageBytes)
		}
		if token == "" {
			break
		}
		if len(page) == 0 || pages > n {
			t.Fatalf("page %d: %d instances with token %q", pages, len(page), token)
		}
	}
	if pages < 2 {
		t.Errorf("%d instances of %d KiB came in %d page with top=1000, want the page cut by bytes", n, inputSize>>10, pages)
	}
	if len(seen) != n {
		t.Errorf("listed %d instances, want %d", len(seen), n)
	}
}
