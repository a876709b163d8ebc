package reprise

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/reprise-dev/reprise/internal/control"
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

// backend serves the management API from the App's control plane; each method is one operation
// of the plane, as for the Client.
type backend struct{ a *App }

var _ httpapi.Backend = backend{}

func (b backend) Hub() string { return b.a.cfg.hub }

func (b backend) HasOrchestrator(name string) bool { return b.a.startable(name) }

func (b backend) StartNew(ctx context.Context, name, instanceID, version string, input json.RawMessage) (string, error) {
	p, err := b.a.plane()
	if err != nil {
		return "", err
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	return b.a.start(ctx, p, control.StartRequest{Name: name, InstanceID: instanceID, Input: input, Version: version})
}

func (b backend) GetInstance(ctx context.Context, id string) (store.Instance, error) {
	p, err := b.a.plane()
	if err != nil {
		return store.Instance{}, err
	}
	return p.Get(ctx, id)
}

func (b backend) History(ctx context.Context, id string) ([]history.Event, error) {
	p, err := b.a.plane()
	if err != nil {
		return nil, err
	}
	return p.History(ctx, id)
}

func (b backend) ListInstances(ctx context.Context, q store.Query) ([]store.Instance, string, error) {
	p, err := b.a.plane()
	if err != nil {
		return nil, "", err
	}
	return p.List(ctx, q)
}

func (b backend) RaiseEvent(ctx context.Context, id, name string, data json.RawMessage) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return p.Raise(ctx, id, name, data)
}

func (b backend) Terminate(ctx context.Context, id, reason string) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.Terminate(ctx, id, reason, true)
}

func (b backend) Suspend(ctx context.Context, id, reason string) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.Suspend(ctx, id, reason)
}

func (b backend) Resume(ctx context.Context, id, reason string) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.Resume(ctx, id, reason)
}

func (b backend) Rewind(ctx context.Context, id, reason string) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.Rewind(ctx, id, reason)
}

func (b backend) Restart(ctx context.Context, id string, newInstanceID bool) (string, error) {
	p, err := b.a.plane()
	if err != nil {
		return "", err
	}
	return p.Restart(ctx, id, newInstanceID)
}

func (b backend) PurgeInstance(ctx context.Context, id string) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.Purge(ctx, id)
}

func (b backend) PurgeInstances(ctx context.Context, f store.PurgeFilter) (int, error) {
	p, err := b.a.plane()
	if err != nil {
		return 0, err
	}
	return p.PurgeMatching(ctx, f)
}

func (b backend) WaitForCompletion(ctx context.Context, id string) (store.Instance, error) {
	p, err := b.a.plane()
	if err != nil {
		return store.Instance{}, err
	}
	return p.WaitForCompletion(ctx, id)
}

// httpKinds maps the control plane's error kinds onto the management API's.
var httpKinds = map[control.Kind]httpapi.ErrorKind{
	control.KindOther:        httpapi.KindOther,
	control.KindNotFound:     httpapi.KindNotFound,
	control.KindExists:       httpapi.KindExists,
	control.KindFinished:     httpapi.KindFinished,
	control.KindActive:       httpapi.KindActive,
	control.KindNotFailed:    httpapi.KindNotFailed,
	control.KindInvalidInput: httpapi.KindInvalidInput,
	control.KindUnavailable:  httpapi.KindUnavailable,
}

func (b backend) ErrorKind(err error) httpapi.ErrorKind { return httpKinds[control.Classify(err)] }

func (b backend) HasEntity(name string) bool { return b.a.hasEntity(name) }

func (b backend) SignalEntity(ctx context.Context, r control.SignalRequest) error {
	p, err := b.a.plane()
	if err != nil {
		return err
	}
	return p.SignalEntity(ctx, r)
}

func (b backend) GetEntity(ctx context.Context, id string, withState bool) (control.EntityRecord, error) {
	p, err := b.a.plane()
	if err != nil {
		return control.EntityRecord{}, err
	}
	return p.GetEntity(ctx, id, withState)
}

func (b backend) EntityDetail(ctx context.Context, id string) (control.EntityRecord, error) {
	p, err := b.a.plane()
	if err != nil {
		return control.EntityRecord{}, err
	}
	return p.EntityDetail(ctx, id)
}

func (b backend) QueryEntities(ctx context.Context, q control.EntityQuery) ([]control.EntityRecord, string, error) {
	p, err := b.a.plane()
	if err != nil {
		return nil, "", err
	}
	return p.QueryEntities(ctx, q)
}

func (b backend) CleanEntityStorage(ctx context.Context, r control.CleanRequest) (control.CleanResult, error) {
	p, err := b.a.plane()
	if err != nil {
		return control.CleanResult{}, err
	}
	return p.CleanEntityStorage(ctx, r)
}
