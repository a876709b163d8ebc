package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/microsoft/durabletask-go/api"
	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/backend/sqlite"
	"github.com/microsoft/durabletask-go/task"
)

var durabletaskPeer = peer{
	name:   "durabletask",
	module: "github.com/microsoft/durabletask-go",
	store:  "backend/sqlite on a file (modernc.org/sqlite), its defaults: rollback journal, synchronous=FULL, one connection; workers with their default parallelism (1 orchestration, 1 activity at a time)",
	open:   openDurabletask,
}

type durabletaskEngine struct {
	worker backend.TaskHubWorker
	client backend.TaskHubClient
}

func openDurabletask(ctx context.Context, path string) (engine, error) {
	r := task.NewTaskRegistry()
	err := r.AddActivityN("say_hello", func(ctx task.ActivityContext) (any, error) {
		var city string
		if err := ctx.GetInput(&city); err != nil {
			return nil, err
		}
		return greet(city), nil
	})
	if err != nil {
		return nil, err
	}
	err = r.AddOrchestratorN("hello_sequence", func(ctx *task.OrchestrationContext) (any, error) {
		var out []string
		for _, city := range cities {
			var g string
			if err := ctx.CallActivity("say_hello", task.WithActivityInput(city)).Await(&g); err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	logger := quietLogger{}
	be := sqlite.NewSqliteBackend(sqlite.NewSqliteOptions(path), logger)
	executor := task.NewTaskExecutor(r)
	worker := backend.NewTaskHubWorker(be,
		backend.NewOrchestrationWorker(be, executor, logger),
		backend.NewActivityTaskWorker(be, executor, logger),
		logger)
	if err := worker.Start(ctx); err != nil {
		return nil, err
	}
	return &durabletaskEngine{worker: worker, client: backend.NewTaskHubClient(be)}, nil
}

func (e *durabletaskEngine) start(ctx context.Context) (string, error) {
	id, err := e.client.ScheduleNewOrchestration(ctx, "hello_sequence")
	return string(id), err
}

func (e *durabletaskEngine) wait(ctx context.Context, id string) ([]string, time.Time, error) {
	md, err := e.client.WaitForOrchestrationCompletion(ctx, api.InstanceID(id))
	if err != nil {
		return nil, time.Time{}, err
	}
	if md.RuntimeStatus != api.RUNTIME_STATUS_COMPLETED {
		return nil, time.Time{}, fmt.Errorf("ended %v: %v", md.RuntimeStatus, md.FailureDetails)
	}
	var out []string
	if err := json.Unmarshal([]byte(md.SerializedOutput), &out); err != nil {
		return nil, time.Time{}, err
	}
	return out, md.LastUpdatedAt, nil
}

func (e *durabletaskEngine) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.worker.Shutdown(ctx)
}

// quietLogger is a backend.Logger that logs warnings and errors only.
type quietLogger struct{}

func (quietLogger) Debug(...any)              {}
func (quietLogger) Debugf(string, ...any)     {}
func (quietLogger) Info(...any)               {}
func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Warn(v ...any)             { warnLogger().Warn(fmt.Sprint(v...)) }
func (quietLogger) Warnf(f string, v ...any)  { warnLogger().Warn(fmt.Sprintf(f, v...)) }
func (quietLogger) Error(v ...any)            { warnLogger().Error(fmt.Sprint(v...)) }
func (quietLogger) Errorf(f string, v ...any) { warnLogger().Error(fmt.Sprintf(f, v...)) }
