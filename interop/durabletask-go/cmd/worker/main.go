// Command worker is a Durable Task worker built on the Go SDK (durabletask-go v0.6.0): it opens
// one work-item stream (client.StartWorkItemListener) to a Durable Task gRPC server, such as
// `reprise serve --grpc ADDR`, and runs the functions of package hello on it, for benchmarks.
//
//	worker --addr 127.0.0.1:4001 [--functions HelloSequence,SayHello]
//
// It prints "worker: ready" once the stream is open and runs until SIGINT or SIGTERM. Work items
// in flight then are not completed: the server hands them to another worker.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/microsoft/durabletask-go/backend"
	"github.com/microsoft/durabletask-go/client"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/reprise-dev/reprise/interop/durabletask-go/hello"
)

func main() {
	addr := flag.String("addr", "", "gRPC address (host:port) of the Durable Task server")
	functions := flag.String("functions", hello.OrchestratorName+","+hello.ActivityName, "comma-separated names of the functions to run")
	flag.Parse()
	if *addr == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: worker --addr HOST:PORT [--functions HelloSequence,SayHello]")
		os.Exit(2)
	}
	if err := run(*addr, strings.Split(*functions, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(addr string, functions []string) error {
	r := task.NewTaskRegistry()
	if err := hello.Register(r, functions...); err != nil {
		return err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The listener runs in the background until ctx ends; the error is only the first connect's.
	if err := client.NewTaskHubGrpcClient(conn, backend.DefaultLogger()).StartWorkItemListener(ctx, r); err != nil {
		return err
	}
	fmt.Println("worker: ready")
	<-ctx.Done()
	return nil
}
