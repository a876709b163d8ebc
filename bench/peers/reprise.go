package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reprise-dev/reprise"
)

var reprisePeer = peer{
	name:   "reprise",
	module: "github.com/reprise-dev/reprise",
	store:  "SQLite file (modernc.org/sqlite), WAL, fsync per commit (the default; WithRelaxedDurability off), default concurrency (256/256) and cache (4096)",
	open:   openReprise,
}

type repriseEngine struct{ app *reprise.App }

func openReprise(ctx context.Context, path string) (engine, error) {
	app := reprise.NewApp(
		reprise.WithSQLiteFile(path),
		reprise.WithLogger(warnLogger()),
	)
	sayHello := reprise.NewActivity("say_hello", func(ctx context.Context, city string) (string, error) {
		return greet(city), nil
	})
	app.Register(sayHello, reprise.NewOrchestrator("hello_sequence", func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
		var out []string
		for _, city := range cities {
			g, err := sayHello.Call(ctx, city).Await()
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	}))
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	return &repriseEngine{app: app}, nil
}

func (e *repriseEngine) start(ctx context.Context) (string, error) {
	return e.app.Client().StartNew(ctx, "hello_sequence", nil)
}

func (e *repriseEngine) wait(ctx context.Context, id string) ([]string, time.Time, error) {
	inst, err := e.app.Client().WaitForCompletion(ctx, id)
	if err != nil {
		return nil, time.Time{}, err
	}
	if inst.Status != reprise.StatusCompleted {
		return nil, time.Time{}, fmt.Errorf("ended %s: %s", inst.Status, inst.Output)
	}
	var out []string
	if err := json.Unmarshal(inst.Output, &out); err != nil {
		return nil, time.Time{}, err
	}
	return out, inst.LastUpdatedAt, nil
}

func (e *repriseEngine) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.app.Shutdown(ctx)
}
