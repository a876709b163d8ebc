package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

var temporalCLI = flag.String("temporal-cli", "temporal", "the temporal CLI, whose dev server the temporal engine runs on")

var temporalPeer = peer{
	name:   "temporal",
	module: "go.temporal.io/sdk",
	store:  "the CLI's dev server (`temporal server start-dev --db-filename`, SQLite file, its defaults) in a process of its own, over gRPC on 127.0.0.1; worker.Options{} defaults",
	open:   openTemporal,
	extraVersion: func() string {
		// "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"; a CLI built with go install says 0.0.0-DEV.
		out, err := exec.Command(*temporalCLI, "--version").Output()
		if err != nil {
			return "dev server ?"
		}
		s := string(out)
		if i := strings.Index(s, "Server "); i >= 0 {
			return "dev server " + strings.FieldsFunc(s[i+len("Server "):], func(r rune) bool { return r == ',' || r == ')' })[0]
		}
		return strings.TrimSpace(s)
	},
}

const temporalQueue = "hello-sequence"

type temporalEngine struct {
	server *exec.Cmd
	client client.Client
	worker worker.Worker
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func openTemporal(ctx context.Context, path string) (engine, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	server := exec.Command(*temporalCLI, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--db-filename", path, "--log-level", "error",
		"--port", strconv.Itoa(ports[0]), "--http-port", strconv.Itoa(ports[1]), "--metrics-port", strconv.Itoa(ports[2]), "--ui-port", strconv.Itoa(ports[3]))
	server.Stdout, server.Stderr = io.Discard, os.Stderr // stdout: its banner
	if err := server.Start(); err != nil {
		return nil, fmt.Errorf("temporal dev server (-temporal-cli): %w", err)
	}
	e := &temporalEngine{server: server}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + strconv.Itoa(ports[0]), Logger: log.NewStructuredLogger(warnLogger())})
		if err == nil {
			e.client = c
			break
		}
		if time.Now().After(deadline) {
			_ = e.close()
			return nil, fmt.Errorf("temporal dev server did not answer: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.worker = worker.New(e.client, temporalQueue, worker.Options{})
	e.worker.RegisterActivityWithOptions(func(ctx context.Context, city string) (string, error) {
		return greet(city), nil
	}, activity.RegisterOptions{Name: "say_hello"})
	e.worker.RegisterWorkflowWithOptions(func(ctx workflow.Context) ([]string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var out []string
		for _, city := range cities {
			var g string
			if err := workflow.ExecuteActivity(ctx, "say_hello", city).Get(ctx, &g); err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	}, workflow.RegisterOptions{Name: "hello_sequence"})
	if err := e.worker.Start(); err != nil {
		_ = e.close()
		return nil, err
	}
	return e, nil
}

func (e *temporalEngine) start(ctx context.Context) (string, error) {
	run, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: temporalQueue}, "hello_sequence")
	if err != nil {
		return "", err
	}
	return run.GetID(), nil
}

func (e *temporalEngine) wait(ctx context.Context, id string) ([]string, time.Time, error) {
	var out []string
	if err := e.client.GetWorkflow(ctx, id, "").Get(ctx, &out); err != nil {
		return nil, time.Time{}, err
	}
	desc, err := e.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return nil, time.Time{}, err
	}
	return out, desc.GetWorkflowExecutionInfo().GetCloseTime().AsTime(), nil
}

// serverCPU is the CPU time the dev server's process has used, from /proc.
func (e *temporalEngine) serverCPU() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.server.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the 3rd on
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (e *temporalEngine) close() error {
	var err error
	if e.worker != nil {
		e.worker.Stop()
	}
	if e.client != nil {
		e.client.Close()
	}
	if e.server.Process != nil {
		_ = e.server.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- e.server.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = e.server.Process.Kill()
			err = errors.New("temporal dev server did not stop on SIGTERM")
			<-done
		}
	}
	return err
}
