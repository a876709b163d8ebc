package sidecar

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/reprise-dev/reprise/store/sqlite"
)

// TestIsLoopback is the decision between the open and the keyed mode: loopback opens without a
// key; any other address (tests never listen on one) needs a key.
func TestIsLoopback(t *testing.T) {
	for _, c := range []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:4001", true}, {"[::1]:4001", true}, {"localhost:4001", true}, {"LOCALHOST:1", true},
		{":4001", false}, {"0.0.0.0:4001", false}, {"[::]:4001", false}, {"192.0.2.1:4001", false}, {"example.com:4001", false},
	} {
		got, err := isLoopback(c.addr)
		if err != nil || got != c.loopback {
			t.Errorf("isLoopback(%q) = %v, %v; want %v", c.addr, got, err, c.loopback)
		}
	}
	if _, err := isLoopback("nonsense"); err == nil {
		t.Error("isLoopback(nonsense): no error, want one asking for HOST:PORT")
	}
}

// TestKeysPreferGivenThenConfigured: a key given in Options wins, then a configured one, then the
// generated one, as for the HTTP API.
func TestKeysPreferGivenThenConfigured(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{Hub: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"keys/master", "keys/system/durabletask_extension"} {
		if _, err := st.Setting(ctx, name, []byte("generated-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REPRISE_MASTER_KEY": "configured-master", "REPRISE_SYSTEM_KEY": "configured-system"}
	k, err := resolveKeys(ctx, st, Keys{System: "given-system"}, func(s string) string { return env[s] })
	if err != nil {
		t.Fatal(err)
	}
	if want := (Keys{Master: "configured-master", System: "given-system"}); k != want {
		t.Errorf("resolveKeys = %+v, want %+v", k, want)
	}
	k, err = resolveKeys(ctx, st, Keys{}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if want := (Keys{Master: "generated-keys/master", System: "generated-keys/system/durabletask_extension"}); k != want {
		t.Errorf("resolveKeys with nothing configured = %+v, want the generated %+v", k, want)
	}
}
