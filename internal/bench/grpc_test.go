package bench

import (
	"errors"
	"os"
	"runtime"
	"testing"
)

func TestCheckGreetings(t *testing.T) {
	for _, ok := range []string{
		`["Hello, Tokyo!","Hello, Seattle!","Hello, London!"]`,
		`["Hello Tokyo!","Hello Seattle!","Hello London!"]`,
	} {
		if err := checkGreetings(ok); err != nil {
			t.Errorf("checkGreetings(%s): %v, want nil", ok, err)
		}
	}
	for _, wrong := range []string{
		``, `{}`, `"Hello, Tokyo!"`,
		`["Hello, Tokyo!","Hello, Seattle!"]`,
		`["Hello, Tokyo!","Hello, London!","Hello, Seattle!"]`,
		`["Goodbye, Tokyo!","Hello, Seattle!","Hello, London!"]`,
	} {
		if err := checkGreetings(wrong); !errors.Is(err, ErrWrongOutput) {
			t.Errorf("checkGreetings(%q): %v, want ErrWrongOutput", wrong, err)
		}
	}
}

// TestLineWatch: the first line with the prefix is found, even when it comes in pieces, and
// only once.
func TestLineWatch(t *testing.T) {
	found := make(chan string, 2)
	w := &lineWatch{prefix: "addr: ", found: found}
	for _, piece := range []string{"starting\naddr", ": 127.0.0.1:4", "001\r\naddr: again\n"} {
		if n, err := w.Write([]byte(piece)); n != len(piece) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", piece, n, err)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d lines found, want 1", len(found))
	}
	if got := <-found; got != "127.0.0.1:4001" {
		t.Errorf("found %q, want 127.0.0.1:4001", got)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		_, _ = tl.Write([]byte(s))
	}
	if got := tl.String(); got != "defgh" {
		t.Errorf("tail %q, want defgh", got)
	}
}

// TestProcessFigures reads this process's CPU time and peak memory the way a run reads a
// backend's and a worker's.
func TestProcessFigures(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("processCPU and peakMemory read /proc")
	}
	// Burn at least a tick (10ms) of CPU.
	for before := cpuTime(); cpuTime()-before < 30e6; {
	}
	got, self := processCPU(os.Getpid()), cpuTime()
	if got <= 0 || got > self+10e6 {
		t.Errorf("processCPU = %v, want above 0 and at most this process's %v (+ a tick)", got, self)
	}
	if m := peakMemory(os.Getpid()); m < 1<<20 {
		t.Errorf("peakMemory = %d bytes, want at least 1 MiB", m)
	}
	if processCPU(-1) != 0 || peakMemory(-1) != 0 {
		t.Error("no such process: want 0")
	}
}
