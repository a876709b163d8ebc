package reprise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/replay"
)

// ExportHistory returns the history of an instance's current execution in its stored, lossless
// JSON form: the input of ReplayHistory. Keep exported histories next to your tests to check that
// changed orchestrator code still replays the instances already running in production
// (reprisetest.CheckReplay). The management API's GET instances/{id}/history and the command
// `reprise instances export` give out the same document.
func (c *Client) ExportHistory(ctx context.Context, id string) ([]byte, error) {
	p, err := c.app.plane()
	if err != nil {
		return nil, err
	}
	events, err := p.History(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("export history: %w", err)
	}
	return history.Export(events)
}

// ErrNonDeterminism is returned (wrapped) by ReplayHistory when the orchestrator's code does not
// make the durable calls its history recorded; a failure with the type NonDeterminismError marks
// instances that failed for the same reason.
var ErrNonDeterminism = replay.ErrNonDeterminism

// ReplayHistory replays a history exported by ExportHistory against an orchestrator definition,
// without any store or activity: it checks that the code makes the same durable calls, in the same
// order, as the history recorded. It returns nil when the code matches, an error wrapping
// ErrNonDeterminism, naming the expected and the actual call, when it does not, and an error
// with the panic's value and stack when the code panics during the replay. All of the history is
// replayed, so ctx.IsPatched answers as on a host that replays it: true where the history
// recorded the patch, false where it did not. reprisetest.CheckReplay runs it on files.
func ReplayHistory(orchestrator Definition, exported []byte) error {
	var events []history.Event
	if err := json.Unmarshal(exported, &events); err != nil {
		return fmt.Errorf("replay history: not an exported history: %w", err)
	}
	if len(events) == 0 || events[0].Type != history.OrchestratorStarted && events[0].Type != history.ExecutionStarted {
		return errors.New("replay history: not an exported history: it does not begin with the start of an execution")
	}
	a := NewApp()
	// The App is never started, so give its orchestrators the logger Start would: replay is
	// silent anyway, but ctx.Logger() must work.
	a.logger = slog.New(slog.DiscardHandler)
	a.Register(orchestrator)
	if len(a.reg.orchestrators) != 1 {
		return errors.New("replay history: the definition is not an orchestrator")
	}
	var fn replay.Func
	for _, f := range a.reg.orchestrators {
		fn = f
	}
	x := replay.New(fn)
	defer x.Close()
	if _, err := x.Run(events, nil); err != nil {
		return fmt.Errorf("replay history: %w", err)
	}
	if !x.Started() {
		return errors.New("replay history: not an exported history: it has no ExecutionStarted event")
	}
	return nil
}
