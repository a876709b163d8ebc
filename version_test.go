package reprise_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise"
)

// TestStartWithVersion: the instance keeps the version it was started with, through its
// episodes and a restart; a version the store cannot take is refused.
func TestStartWithVersion(t *testing.T) {
	app := startApp(t, []reprise.Definition{echoOrch})
	c := app.Client()
	id, err := echoOrch.Start(testCtx(t), c, json.RawMessage(`1`), reprise.WithVersion("2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if inst := waitDone(t, c, id); inst.Version != "2.1" || inst.Status != reprise.StatusCompleted {
		t.Fatalf("finished instance: status %s, version %q; want Completed, 2.1", inst.Status, inst.Version)
	}
	again, err := c.Restart(testCtx(t), id, true)
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := c.GetInstance(testCtx(t), again); err != nil || inst.Version != "2.1" {
		t.Fatalf("restarted instance: %+v, %v; want version 2.1", inst, err)
	}
	plain, err := echoOrch.Start(testCtx(t), c, json.RawMessage(`1`))
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := c.GetInstance(testCtx(t), plain); err != nil || inst.Version != "" {
		t.Fatalf("instance started without a version: %+v, %v", inst, err)
	}
	for _, bad := range []string{"1\x00", "1.\xff", strings.Repeat("9", 2049)} {
		if _, err := echoOrch.Start(testCtx(t), c, nil, reprise.WithVersion(bad)); !errors.Is(err, reprise.ErrInvalidArgument) {
			t.Errorf("version %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
}
