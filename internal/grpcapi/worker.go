package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/reprise-dev/reprise/internal/control"
	"github.com/reprise-dev/reprise/internal/engine"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
	"github.com/reprise-dev/reprise/internal/history"
	"github.com/reprise-dev/reprise/internal/metrics"
	"github.com/reprise-dev/reprise/internal/replay"
	"github.com/reprise-dev/reprise/store"
)

// Work is what a hub needs to serve the worker RPCs.
//
// Each GetWorkItems stream runs an engine of its own (internal/engine with the stream as its
// Remote) with its own lease owner: it claims only the names the worker asked for, no more items
// than the worker's limits, and when the stream ends the engine releases its leases at once, so
// that the work goes to another stream (or another server on the store) without waiting for a
// lease to run out.
type Work struct {
	Store store.Store
	// Signals shares the store's wake-ups among the streams (and an App's own engine, when it
	// runs Go code on the same store); required.
	Signals *engine.Signals
	// TakenOrchestrators and TakenActivities are the names Go code in this process runs (an
	// App's registrations): a worker that sends no work-item filters gets every other name.
	TakenOrchestrators, TakenActivities []string
	// TakenEntities are the entity names Go code in this process runs, as TakenOrchestrators.
	TakenEntities []string
	// EntityRequestsV1 sends entity batches as the older work item (entityRequest,
	// EntityBatchRequest) instead of entityRequestV2, for workers that know only that one. The
	// protocol has no capability by which a worker says which it takes; the current SDKs (.NET,
	// Java, JavaScript, Python, Go) take both.
	EntityRequestsV1 bool
	// LeaseDuration is the streams' lease; default 30s, renewed every third of it while the
	// worker works on the item.
	LeaseDuration time.Duration
	// PingInterval is how often every stream gets a healthPing, which keeps the SDKs (that
	// reconnect after 120 s without a message) connected; default 30s.
	PingInterval time.Duration
	// AbandonDelay is how long an abandoned item waits before it is handed out again; default 1s.
	AbandonDelay time.Duration
	// MaxConcurrent is the items of each kind in flight on a stream whose worker sets no limit;
	// default 256.
	MaxConcurrent int
	Logger        *slog.Logger // default: discards
	// Metrics, when set, counts the connected streams and is given to the streams' engines.
	Metrics *metrics.Metrics
}

func (w *Work) leaseDuration() time.Duration { return orDefault(w.LeaseDuration, 30*time.Second) }
func (w *Work) pingInterval() time.Duration  { return orDefault(w.PingInterval, 30*time.Second) }
func (w *Work) abandonDelay() time.Duration  { return orDefault(w.AbandonDelay, time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (w *Work) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// rejectAll is the name the Go SDK puts in a filter list to mean "none of this kind" (an empty
// list means unfiltered there). It cannot be a name (it holds a NUL), so it matches nothing.
const rejectAll = "\x00__durabletask_reject_all__"

// filterNames returns the names a stream claims for one kind: every name but the taken ones when
// the worker sent no filter of the kind (the SDKs send filters only when configured to), else the
// names it listed. Versions are matched when an item is handed out (see versionFilter).
func filterNames(listed []string, filtered bool, taken []string) (store.Names, error) {
	if !filtered || len(listed) == 0 {
		return store.AllNamesExcept(taken...), nil
	}
	names := store.Names{}
	for _, n := range listed {
		if n == rejectAll {
			continue
		}
		if err := store.CheckText("work-item filter name", n, store.MaxKeyBytes); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if n == "" {
			return nil, invalid("work-item filter with an empty name: name each orchestrator and activity the worker runs")
		}
		names = append(names, n)
	}
	return names, nil
}

// versionFilter is the versions a stream's filters allow for each name (lower-cased); a name
// without versions allows every version.
type versionFilter map[string][]string

func (v versionFilter) allows(name, version string) bool {
	versions, ok := v[strings.ToLower(name)]
	return !ok || slices.Contains(versions, version)
}

func versionFilters(r *pb.GetWorkItemsRequest) (orch, act versionFilter) {
	orch, act = versionFilter{}, versionFilter{}
	for _, o := range r.GetWorkItemFilters().GetOrchestrations() {
		if len(o.GetVersions()) > 0 {
			orch[strings.ToLower(o.GetName())] = o.GetVersions()
		}
	}
	for _, a := range r.GetWorkItemFilters().GetActivities() {
		if len(a.GetVersions()) > 0 {
			act[strings.ToLower(a.GetName())] = a.GetVersions()
		}
	}
	return orch, act
}

func streamNames(r *pb.GetWorkItemsRequest, w *Work) (orch, act, ent store.Names, err error) {
	f := r.GetWorkItemFilters()
	var on, an, en []string
	for _, o := range f.GetOrchestrations() {
		on = append(on, o.GetName())
	}
	for _, a := range f.GetActivities() {
		an = append(an, a.GetName())
	}
	for _, e := range f.GetEntities() {
		// Entity names are the lower-case name part of "@name@key" (the SDKs register them so).
		en = append(en, strings.ToLower(e.GetName()))
	}
	if orch, err = filterNames(on, f != nil, w.TakenOrchestrators); err != nil {
		return nil, nil, nil, err
	}
	if act, err = filterNames(an, f != nil, w.TakenActivities); err != nil {
		return nil, nil, nil, err
	}
	if ent, err = filterNames(en, f != nil, w.TakenEntities); err != nil {
		return nil, nil, nil, err
	}
	return orch, act, ent, nil
}

// GetWorkItems streams work items to a worker until the worker ends the call or the server shuts
// down; then the items still in flight are given back (their leases released), to be delivered
// again on another stream.
func (s *Service) GetWorkItems(r *pb.GetWorkItemsRequest, stream grpc.ServerStreamingServer[pb.WorkItem]) error {
	ctx := stream.Context()
	h, err := s.hub(ctx)
	if err != nil {
		return err
	}
	if h.Work == nil {
		return status.Errorf(codes.FailedPrecondition, "task hub %q serves no workers here", h.Name)
	}
	orch, act, ent, err := streamNames(r, h.Work)
	if err != nil {
		return err
	}
	ws := &workerStream{
		svc: s, hub: h, stream: stream, id: control.NewID(), done: make(chan struct{}),
		orch: orch, act: act, ent: ent,
	}
	ws.orchVersions, ws.actVersions = versionFilters(r)
	md, _ := metadata.FromIncomingContext(ctx)
	ws.log = h.Work.logger().With("stream", ws.id, "workerId", strings.Join(md.Get("workerid"), ","))
	// Headers at once: the worker knows the stream is open before the first item.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	limit := func(n int32) int {
		if n > 0 {
			return int(n)
		}
		return orDefaultInt(h.Work.MaxConcurrent, 256)
	}
	eng := engine.New(engine.Options{
		Store:                       h.Work.Store,
		Remote:                      ws,
		Entities:                    ws,
		Signals:                     h.Work.Signals,
		Logger:                      ws.log,
		Metrics:                     h.Work.Metrics,
		MaxConcurrentOrchestrations: limit(r.GetMaxConcurrentOrchestrationWorkItems()),
		MaxConcurrentActivities:     limit(r.GetMaxConcurrentActivityWorkItems()),
		MaxConcurrentEntities:       limit(r.GetMaxConcurrentEntityWorkItems()),
		CacheSize:                   -1,
		LeaseDuration:               h.Work.leaseDuration(),
		Owner:                       "grpc-" + ws.id,
		DeadlockTimeout:             -1,
		UnclaimedInterval:           -1,
	})
	h.Work.Metrics.StreamConnected(1)
	defer h.Work.Metrics.StreamConnected(-1)
	ws.log.Info("worker stream opened", "orchestrators", describeNames(orch), "activities", describeNames(act), "entities", describeNames(ent))
	eng.Start()

	ping := time.NewTicker(h.Work.pingInterval())
	defer ping.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-ping.C:
			if err := ws.send(&pb.WorkItem{Request: &pb.WorkItem_HealthPing{HealthPing: &pb.HealthPing{}}}); err != nil {
				ws.log.Info("worker stream broken", "err", err)
				ws.end()
			}
		case <-ws.done:
		}
		if ws.ended() {
			break
		}
	}
	ws.end()
	// The turns in flight return at once (the stream is gone); a completion being committed
	// gets a moment to finish. Then the leases are released.
	sctx, cancel := context.WithTimeout(context.Background(), h.Work.leaseDuration()/2)
	defer cancel()
	if err := eng.Shutdown(sctx); err != nil {
		ws.log.Warn("worker stream closed with work still being committed", "err", err)
	}
	ws.log.Info("worker stream closed; its work was given back")
	return contextStatus(ctx)
}

func orDefaultInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func describeNames(n store.Names) string {
	if ex, ok := n.Except(); ok {
		if len(ex) == 0 {
			return "all"
		}
		return "all but " + strings.Join(ex, ", ")
	}
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ", ")
}

// workerStream is one GetWorkItems call: the Remote of its engine.
type workerStream struct {
	svc    *Service
	hub    *Hub
	stream grpc.ServerStreamingServer[pb.WorkItem]
	id     string
	log    *slog.Logger
	// orch, act and ent are the names the stream claims (namesMu): the filters', less those the
	// worker turned out not to run (see notRegistered, unregisteredBatch).
	namesMu sync.Mutex
	orch    store.Names
	act     store.Names
	ent     store.Names
	// orchVersions and actVersions are the versions the filters allow; an item of another
	// version is given back (after AbandonDelay) for a stream that runs it.
	orchVersions, actVersions versionFilter
	sendMu                    sync.Mutex // a gRPC stream takes one Send at a time
	done                      chan struct{}
	doneOnce                  sync.Once
}

var _ engine.Remote = (*workerStream)(nil)

func (w *workerStream) end() { w.doneOnce.Do(func() { close(w.done) }) }

func (w *workerStream) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *workerStream) send(item *pb.WorkItem) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.ended() {
		return errors.New("the stream has ended")
	}
	return w.stream.Send(item)
}

// Names implements engine.Remote.
func (w *workerStream) Names() (store.Names, store.Names) {
	w.namesMu.Lock()
	defer w.namesMu.Unlock()
	return w.orch, w.act
}

// leaveOut stops the stream from claiming name (of kind), which its worker does not run.
func (w *workerStream) leaveOut(kind store.WorkKind, name string) {
	w.namesMu.Lock()
	defer w.namesMu.Unlock()
	names := &w.orch
	switch kind {
	case store.ActivityWorkKind:
		names = &w.act
	case store.EntityWorkKind:
		names = &w.ent
	}
	if excluded, ok := names.Except(); ok {
		*names = store.AllNamesExcept(append(slices.Clone(excluded), name)...)
		return
	}
	*names = slices.DeleteFunc(slices.Clone(*names), func(n string) bool { return strings.EqualFold(n, name) })
}

// notRegistered reports whether a failure is a worker's "I do not run this" for name: the SDKs
// answer so for a work item of a name they have not registered (durabletask-js
// OrchestratorNotRegisteredError and ActivityNotRegisteredError, durabletask-go
// TaskActivityNotRegistered and "orchestrator named 'X' is not registered"). A worker without
// filters gets every name, so on a hub where workers run different names this is how each
// stream learns what to leave to the others.
func notRegistered(f *pb.TaskFailureDetails, name string) bool {
	if f == nil {
		return false
	}
	switch f.ErrorType {
	case "OrchestratorNotRegisteredError", "ActivityNotRegisteredError", "TaskActivityNotRegistered":
		return true
	}
	return strings.Contains(f.ErrorMessage, "not registered") && strings.Contains(f.ErrorMessage, name)
}

// unregisteredTurn reports whether a turn's response is only its worker's "I do not run this
// orchestrator".
func unregisteredTurn(r *pb.OrchestratorResponse, name string) bool {
	if len(r.Actions) != 1 {
		return false
	}
	c := r.Actions[0].GetCompleteOrchestration()
	return c != nil && c.OrchestrationStatus == pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED && notRegistered(c.FailureDetails, name)
}

// Orchestrate implements engine.Remote: it sends the turn as an OrchestratorRequest and waits for
// the worker's CompleteOrchestratorTask (or abandon), the stream's end or the lease's deadline.
func (w *workerStream) Orchestrate(ctx context.Context, t engine.Turn) (*replay.Result, func(error), error) {
	if !w.orchVersions.allows(t.Instance.Name, t.Instance.Version) {
		return nil, nil, w.giveBack(completion{}, t.Claim, fmt.Sprintf("version %q of %s is not in the worker's filters", t.Instance.Version, t.Instance.Name))
	}
	req, err := orchestratorRequest(t)
	if err != nil {
		return nil, nil, err
	}
	p := w.svc.dispatched.add(w.hub.Name, t.Instance.ID, -1)
	item := &pb.WorkItem{Request: &pb.WorkItem_OrchestratorRequest{OrchestratorRequest: req}, CompletionToken: p.token}
	c, err := w.await(ctx, p, item)
	if err != nil {
		return nil, nil, err
	}
	if c.abandoned {
		return nil, nil, w.giveBack(c, t.Claim, "the worker abandoned it")
	}
	if unregisteredTurn(c.orch, t.Instance.Name) {
		w.leaveOut(store.OrchestrationWorkKind, t.Instance.Name)
		w.log.Info("the worker does not run this orchestrator: the stream leaves it to others", "name", t.Instance.Name, "instanceId", t.Instance.ID)
		return nil, nil, w.giveBack(c, t.Claim, fmt.Sprintf("the worker does not run orchestrator %q", t.Instance.Name))
	}
	res, err := turnResult(t, c.orch)
	if err != nil {
		// A response the engine cannot apply fails the instance, with the reason, rather than
		// being delivered again to a worker that would answer the same.
		w.log.Warn("orchestration failed: its worker's response is invalid", "instanceId", t.Instance.ID, "err", err)
		res = &replay.Result{Done: true, Status: store.StatusFailed, Failure: &history.Failure{
			Type: "InvalidWorkerResponse", Message: err.Error(), NonRetriable: true}}
		return res, func(error) { c.result <- status.Error(codes.InvalidArgument, err.Error()) }, nil
	}
	return res, func(err error) { c.result <- commitStatus(err) }, nil
}

// Activity implements engine.Remote, as Orchestrate for one ActivityRequest.
func (w *workerStream) Activity(ctx context.Context, t engine.ActivityTurn) (history.Event, func(error), error) {
	ev := t.Scheduled
	if !w.actVersions.allows(ev.Name, ev.Version) {
		return history.Event{}, nil, w.giveBack(completion{}, t.Claim, fmt.Sprintf("version %q of %s is not in the worker's filters", ev.Version, ev.Name))
	}
	req := &pb.ActivityRequest{
		Name:                  ev.Name,
		Input:                 text(ev.Input),
		OrchestrationInstance: instanceRef(t.Task.InstanceID, t.Task.ExecutionID),
		TaskId:                ev.ID,
		Tags:                  ev.Tags,
		ParentTraceContext:    traceToProto(ev.Trace),
	}
	if ev.Version != "" {
		req.Version = wrapperspb.String(ev.Version)
	}
	p := w.svc.dispatched.add(w.hub.Name, t.Task.InstanceID, ev.ID)
	item := &pb.WorkItem{Request: &pb.WorkItem_ActivityRequest{ActivityRequest: req}, CompletionToken: p.token}
	c, err := w.await(ctx, p, item)
	if err != nil {
		return history.Event{}, nil, err
	}
	if c.abandoned {
		return history.Event{}, nil, w.giveBack(c, t.Claim, "the worker abandoned it")
	}
	if notRegistered(c.act.FailureDetails, ev.Name) {
		w.leaveOut(store.ActivityWorkKind, ev.Name)
		w.log.Info("the worker does not run this activity: the stream leaves it to others", "name", ev.Name, "instanceId", t.Task.InstanceID)
		return history.Event{}, nil, w.giveBack(c, t.Claim, fmt.Sprintf("the worker does not run activity %q", ev.Name))
	}
	result, err := activityResult(c.act)
	if err != nil {
		w.log.Warn("activity failed: its worker's response is invalid", "instanceId", t.Task.InstanceID, "name", ev.Name, "err", err)
		result = history.New(history.TaskFailed, time.Now().UTC())
		result.Failure = &history.Failure{Type: "InvalidWorkerResponse", Message: err.Error(), NonRetriable: true}
		return result, func(error) { c.result <- status.Error(codes.InvalidArgument, err.Error()) }, nil
	}
	return result, func(err error) { c.result <- commitStatus(err) }, nil
}

// await sends the item and waits for its completion. When it returns an error, the item is no
// longer waiting: a completion that comes later finds no item (NOT_FOUND), or, if it was taken
// just then, is answered here.
func (w *workerStream) await(ctx context.Context, p *pending, item *pb.WorkItem) (completion, error) {
	if err := w.send(item); err != nil {
		w.svc.dispatched.drop(p, status.Error(codes.NotFound, "the work item was given back: its stream ended before it was sent; it is delivered again on another stream"))
		return completion{}, fmt.Errorf("%w: the stream ended before the item was sent: %v", engine.ErrGivenBack, err)
	}
	select {
	case c := <-p.reply:
		return c, nil
	case <-w.done:
		w.svc.dispatched.drop(p, status.Error(codes.NotFound, "the work item was given back: its stream ended; it is delivered again on another stream"))
		return completion{}, fmt.Errorf("%w: its stream ended", engine.ErrGivenBack)
	case <-ctx.Done():
		w.svc.dispatched.drop(p, status.Error(codes.NotFound, "the work item was given back: the worker did not complete it within its lease; it is delivered again"))
		return completion{}, fmt.Errorf("%w: not completed within the lease: %v", engine.ErrGivenBack, ctx.Err())
	}
}

// giveBack gives an item back without a result: the worker's call c (if any) is answered OK,
// and the item is handed out again after AbandonDelay. It returns the error the engine gets.
func (w *workerStream) giveBack(c completion, claim store.Claim, why string) error {
	w.delay(claim)
	if c.result != nil {
		c.result <- nil
	}
	return fmt.Errorf("%w: %s", engine.ErrGivenBack, why)
}

// delay makes an item given back wait AbandonDelay before it is handed out again, so that a
// worker that abandons (a version it does not run) does not spin on it.
func (w *workerStream) delay(c store.Claim) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.hub.Work.Store.RenewLeases(ctx, "grpc-"+w.id, []store.Claim{c}, w.hub.Work.abandonDelay()); err != nil {
		w.log.Warn("shortening the lease of an abandoned work item; it is handed out again when its lease ends", "err", err)
	}
}
