package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/history"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/registry"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/google/uuid"
)

var goworkflowsPeer = peer{
	name:   "goworkflows",
	module: "github.com/cschleiden/go-workflows",
	store:  "backend/sqlite on a file (modernc.org/sqlite), its defaults: WAL, synchronous=FULL, one connection; worker.DefaultOptions (2 pollers each, 200 ms polling interval, no parallelism bound)",
	open:   openGoworkflows,
}

type goworkflowsEngine struct {
	be     backend.Backend
	client *client.Client
	stop   context.CancelFunc
	worker *worker.Worker
	insts  sync.Map // instance ID → *workflow.Instance (with its execution ID)
}

func sayHelloGW(ctx context.Context, city string) (string, error) { return greet(city), nil }

func helloSequenceGW(ctx workflow.Context) ([]string, error) {
	var out []string
	for _, city := range cities {
		g, err := workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, "say_hello", city).Get(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func openGoworkflows(ctx context.Context, path string) (engine, error) {
	be := sqlite.NewSqliteBackend(path, sqlite.WithBackendOptions(backend.WithLogger(warnLogger())))
	w := worker.New(be, nil) // nil: worker.DefaultOptions
	if err := w.RegisterWorkflow(helloSequenceGW, registry.WithName("hello_sequence")); err != nil {
		return nil, err
	}
	if err := w.RegisterActivity(sayHelloGW, registry.WithName("say_hello")); err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	if err := w.Start(wctx); err != nil {
		stop()
		return nil, err
	}
	return &goworkflowsEngine{be: be, client: client.New(be), stop: stop, worker: w}, nil
}

func (e *goworkflowsEngine) start(ctx context.Context) (string, error) {
	id := uuid.NewString()
	inst, err := e.client.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: id}, "hello_sequence")
	if err != nil {
		return "", err
	}
	e.insts.Store(id, inst)
	return id, nil
}

// wait is client.GetWorkflowResult, which also reads the finished event for its timestamp.
func (e *goworkflowsEngine) wait(ctx context.Context, id string) ([]string, time.Time, error) {
	v, _ := e.insts.LoadAndDelete(id)
	inst := v.(*workflow.Instance)
	if err := e.client.WaitForWorkflowInstance(ctx, inst, time.Hour); err != nil {
		return nil, time.Time{}, err
	}
	events, err := e.be.GetWorkflowInstanceHistory(ctx, inst, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, ev := range events {
		if ev.Type != history.EventType_WorkflowExecutionFinished {
			continue
		}
		a := ev.Attributes.(*history.ExecutionCompletedAttributes)
		if a.Error != nil {
			return nil, time.Time{}, fmt.Errorf("failed: %s", a.Error.Message)
		}
		var out []string
		if err := e.be.Options().Converter.From(a.Result, &out); err != nil {
			return nil, time.Time{}, err
		}
		return out, ev.Timestamp, nil
	}
	return nil, time.Time{}, errors.New("finished without a finished event")
}

func (e *goworkflowsEngine) close() error {
	e.stop()
	return errors.Join(e.worker.WaitForCompletion(), e.be.Close())
}
