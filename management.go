package reprise

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/httpapi"
	"github.com/reprise-dev/reprise/store"
)

// ManagementURLs are the URLs of the Durable Functions management API for one instance (the
// HttpManagementPayload of Durable Functions), with the JSON names its clients expect.
type ManagementURLs struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	RewindPostURI         string `json:"rewindPostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

func (c *Client) api() (*httpapi.API, error) {
	c.app.mu.Lock()
	defer c.app.mu.Unlock()
	if c.app.api == nil {
		return nil, ErrNotStarted
	}
	return c.app.api, nil
}

// ManagementURLs returns the management URLs of an instance, on the scheme and host of the
// request r (the request that started it, typically). They carry the system key, if there is one.
func (c *Client) ManagementURLs(r *http.Request, id string) (ManagementURLs, error) {
	api, err := c.api()
	if err != nil {
		return ManagementURLs{}, err
	}
	return ManagementURLs(api.Links(r, id)), nil
}

// WriteCheckStatusResponse answers r with 202 Accepted, a Location header pointing at the
// instance's status and the management URLs as the body: the response an HTTP starter gives in
// Durable Functions, which callers poll until runtimeStatus is Completed.
func (c *Client) WriteCheckStatusResponse(w http.ResponseWriter, r *http.Request, id string) {
	api, err := c.api()
	if err != nil {
		writeMessage(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	api.WriteCheckStatus(w, r, id)
}

// WriteCompletionOrCheckStatusResponse waits up to timeout for the instance to finish. If it
// completed, it answers 200 with the orchestration's output as the body; if it failed or was
// terminated, 200 with its status; if it is still running, the 202 check-status response.
func (c *Client) WriteCompletionOrCheckStatusResponse(w http.ResponseWriter, r *http.Request, id string, timeout time.Duration) {
	api, err := c.api()
	if err != nil {
		writeMessage(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	api.WriteWaitOrCheckStatus(w, r, id, timeout, 0)
}

// backend serves the management API from the App's client and store.
type backend struct{ a *App }

var _ httpapi.Backend = backend{}

func (b backend) client() *Client { return b.a.client }

func (b backend) Hub() string { return b.a.cfg.hub }

func (b backend) HasOrchestrator(name string) bool {
	_, ok := b.a.reg.Orchestrator(name)
	return ok
}

func (b backend) StartNew(ctx context.Context, name, instanceID string, input json.RawMessage) (string, error) {
	var opts []StartOption
	if instanceID != "" {
		opts = append(opts, WithInstanceID(instanceID))
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	return b.client().StartNew(ctx, name, input, opts...)
}

func (b backend) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	st, err := b.a.store()
	if err != nil {
		return store.Instance{}, err
	}
	return st.GetInstance(ctx, id)
}

func (b backend) History(ctx context.Context, id string) ([]history.Event, error) {
	st, err := b.a.store()
	if err != nil {
		return nil, err
	}
	chunks, err := st.History(ctx, id)
	if err != nil {
		return nil, err
	}
	return history.DecodeAll(chunks)
}

func (b backend) ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	st, err := b.a.store()
	if err != nil {
		return nil, "", err
	}
	return st.ListInstances(ctx, q)
}

func (b backend) RaiseEvent(ctx context.Context, id, name string, data json.RawMessage) error {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return b.client().RaiseEvent(ctx, id, name, data)
}

func (b backend) Terminate(ctx context.Context, id, reason string) error {
	return b.client().Terminate(ctx, id, reason)
}

func (b backend) Suspend(ctx context.Context, id, reason string) error {
	return b.client().Suspend(ctx, id, reason)
}

func (b backend) Resume(ctx context.Context, id, reason string) error {
	return b.client().Resume(ctx, id, reason)
}

func (b backend) Rewind(ctx context.Context, id, reason string) error {
	return b.client().Rewind(ctx, id, reason)
}

func (b backend) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	return b.client().Restart(ctx, id, newInstanceID)
}

func (b backend) PurgeInstance(ctx context.Context, id string) error {
	return b.client().PurgeInstance(ctx, id)
}

func (b backend) PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error) {
	return b.client().PurgeInstances(ctx, PurgeFilter{CreatedFrom: f.CreatedFrom, CreatedTo: f.CreatedTo, Statuses: f.Statuses})
}

func (b backend) WaitForCompletion(ctx context.Context, id string) (store.Instance, error) {
	return b.client().waitFor(ctx, id, store.Status.Terminal)
}

func (b backend) ErrorKind(err error) httpapi.ErrorKind {
	switch {
	case errors.Is(err, ErrInstanceFinished):
		return httpapi.KindFinished
	case errors.Is(err, ErrInstanceNotFound):
		return httpapi.KindNotFound
	case errors.Is(err, ErrInstanceExists):
		return httpapi.KindExists
	case errors.Is(err, ErrInstanceActive):
		return httpapi.KindActive
	case errors.Is(err, ErrNotFailed):
		return httpapi.KindNotFailed
	case errors.Is(err, ErrInvalidInstanceID), errors.Is(err, ErrNotRegistered), errors.Is(err, ErrInvalidArgument),
		errors.Is(err, store.ErrInvalidToken):
		return httpapi.KindInvalidInput
	case errors.Is(err, ErrNotStarted), errors.Is(err, store.ErrClosed):
		return httpapi.KindUnavailable
	}
	return httpapi.KindOther
}
