// Command worker is a Durable Task worker of the Go SDK (github.com/microsoft/durabletask-go
// v0.6.0, client.TaskHubGrpcClient.StartWorkItemListener) with the hello sequence: the
// orchestrator "HelloSequence" calls the activity "SayHello" with "Tokyo", "Seattle" and "London"
// in turn and returns the three greetings ("Hello, Tokyo!", ...) as a JSON array.
//
//	worker --addr HOST:PORT
//
// It connects to the gRPC backend at --addr (`reprise serve`, or the durabletask-go sidecar),
// prints "ready" once its work-item stream is open, and runs until SIGINT or SIGTERM.
// `reprise bench grpc` runs it; it lives in this module because durabletask-go cannot be linked
// into Reprise's (docs/decisions/0011-grpc-and-protobuf.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/microsoft/durabletask-go/client"
	"github.com/microsoft/durabletask-go/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	addr := flag.String("addr", "", "gRPC address of the backend, HOST:PORT")
	verbose := flag.Bool("v", false, "log the SDK's messages on standard error")
	flag.Parse()
	if *addr == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: worker --addr HOST:PORT [-v]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := task.NewTaskRegistry()
	if err := r.AddOrchestratorN("HelloSequence", helloSequence); err != nil {
		fail(err)
	}
	if err := r.AddActivityN("SayHello", sayHello); err != nil {
		fail(err)
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	if err := client.NewTaskHubGrpcClient(conn, sdkLog{*verbose}).StartWorkItemListener(ctx, r); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	<-ctx.Done()
}

func helloSequence(ctx *task.OrchestrationContext) (any, error) {
	var greetings []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		var g string
		if err := ctx.CallActivity("SayHello", task.WithActivityInput(city)).Await(&g); err != nil {
			return nil, err
		}
		greetings = append(greetings, g)
	}
	return greetings, nil
}

func sayHello(ctx task.ActivityContext) (any, error) {
	var city string
	if err := ctx.GetInput(&city); err != nil {
		return nil, err
	}
	return "Hello, " + city + "!", nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "worker:", err)
	os.Exit(1)
}

// sdkLog is the SDK's backend.Logger, on standard error. Without -v it drops the debug and info
// messages: the SDK logs lines per work item, which would cost a benchmark more than the work.
type sdkLog struct{ verbose bool }

func (l sdkLog) Debug(v ...any)                 { l.print(false, "DEBUG", fmt.Sprint(v...)) }
func (l sdkLog) Debugf(format string, v ...any) { l.print(false, "DEBUG", fmt.Sprintf(format, v...)) }
func (l sdkLog) Info(v ...any)                  { l.print(false, "INFO", fmt.Sprint(v...)) }
func (l sdkLog) Infof(format string, v ...any)  { l.print(false, "INFO", fmt.Sprintf(format, v...)) }
func (l sdkLog) Warn(v ...any)                  { l.print(true, "WARNING", fmt.Sprint(v...)) }
func (l sdkLog) Warnf(format string, v ...any)  { l.print(true, "WARNING", fmt.Sprintf(format, v...)) }
func (l sdkLog) Error(v ...any)                 { l.print(true, "ERROR", fmt.Sprint(v...)) }
func (l sdkLog) Errorf(format string, v ...any) { l.print(true, "ERROR", fmt.Sprintf(format, v...)) }

func (l sdkLog) print(always bool, level, msg string) {
	if always || l.verbose {
		fmt.Fprintf(os.Stderr, "worker: %s: %s\n", level, msg)
	}
}
