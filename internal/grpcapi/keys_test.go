package grpcapi

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

const (
	testMaster = "master-key-for-tests"
	testSystem = "system-key-for-tests"
)

func TestKeyOptionsNeedAKey(t *testing.T) {
	if _, err := KeyOptions(Keys{}); err == nil {
		t.Fatal("KeyOptions(no keys) = nil error, want one: a server meant to require a key must not open")
	}
}

// TestKeysRequired runs the calls over a real server that requires the keys: a unary control
// RPC, Hello and a server stream, each with no key, a wrong key, a malformed authorization and
// the right master and system keys (as x-functions-key and as a Bearer token).
func TestKeysRequired(t *testing.T) {
	opts, err := KeyOptions(Keys{Master: testMaster, System: testSystem})
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewTaskHubSidecarServiceClient(serve(t, opts...))

	// An instance to read, started with the master key.
	ctx := metadata.AppendToOutgoingContext(callContext(t), KeyMetadata, testMaster)
	if _, err := client.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "keyed", Name: "Hello"}); err != nil {
		t.Fatalf("StartInstance with the master key: %v", err)
	}

	calls := map[string]func(context.Context) error{
		"Hello": func(ctx context.Context) error {
			_, err := client.Hello(ctx, &emptypb.Empty{})
			return err
		},
		"GetInstance": func(ctx context.Context) error {
			res, err := client.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "keyed"})
			if err == nil && !res.Exists {
				return errors.New("GetInstance answered, but without the instance")
			}
			return err
		},
		"StreamInstanceHistory": func(ctx context.Context) error {
			stream, err := client.StreamInstanceHistory(ctx, &pb.StreamInstanceHistoryRequest{InstanceId: "keyed"})
			if err != nil {
				return err
			}
			// No worker runs the instance, so its history may be empty: the stream ends cleanly.
			for {
				if _, err := stream.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
	}
	cases := []struct {
		name    string
		md      []string
		want    codes.Code
		message string // in the refusal
	}{
		{"no key", nil, codes.Unauthenticated, "carries none"},
		{"wrong key", []string{KeyMetadata, "not-the-key"}, codes.Unauthenticated, "not a key of this server"},
		{"a prefix of the key", []string{KeyMetadata, testMaster[:5]}, codes.Unauthenticated, "not a key of this server"},
		{"wrong bearer", []string{"authorization", "Bearer not-the-key"}, codes.Unauthenticated, "not a key of this server"},
		{"basic authorization", []string{"authorization", "Basic " + testMaster}, codes.Unauthenticated, "not \"Bearer <key>\""},
		{"master key", []string{KeyMetadata, testMaster}, codes.OK, ""},
		{"system key", []string{KeyMetadata, testSystem}, codes.OK, ""},
		{"system key as bearer", []string{"authorization", "Bearer " + testSystem}, codes.OK, ""},
		{"master key as bearer", []string{"authorization", "bearer " + testMaster}, codes.OK, ""},
	}
	for _, c := range cases {
		for rpc, call := range calls {
			t.Run(c.name+"/"+rpc, func(t *testing.T) {
				ctx := callContext(t)
				if c.md != nil {
					ctx = metadata.AppendToOutgoingContext(ctx, c.md...)
				}
				err := call(ctx)
				if got := status.Code(err); got != c.want {
					t.Fatalf("%s: %v (code %v), want code %v", rpc, err, got, c.want)
				}
				if c.want == codes.OK {
					return
				}
				msg := status.Convert(err).Message()
				for _, want := range []string{c.message, KeyMetadata, "reprise keys"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s refusal %q does not say %q", rpc, msg, want)
					}
				}
				if strings.Contains(msg, testMaster) || strings.Contains(msg, testSystem) {
					t.Errorf("%s refusal %q shows a key", rpc, msg)
				}
			})
		}
	}
}

// TestKeysOnlyMaster: a server with the master key only (the management API is anonymous, so no
// system key was generated) takes the master key.
func TestKeysOnlyMaster(t *testing.T) {
	opts, err := KeyOptions(Keys{Master: testMaster})
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewTaskHubSidecarServiceClient(serve(t, opts...))
	for key, want := range map[string]codes.Code{testMaster: codes.OK, testSystem: codes.Unauthenticated} {
		_, err := client.Hello(metadata.AppendToOutgoingContext(callContext(t), KeyMetadata, key), &emptypb.Empty{})
		if got := status.Code(err); got != want {
			t.Errorf("Hello with key %q: %v, want code %v", key, err, want)
		}
	}
}

// With no key options the server stays open, as on loopback.
func TestNoKeyOptionsStayOpen(t *testing.T) {
	client := pb.NewTaskHubSidecarServiceClient(serve(t, []grpc.ServerOption{}...))
	if _, err := client.Hello(callContext(t), &emptypb.Empty{}); err != nil {
		t.Fatalf("Hello without keys on an open server: %v", err)
	}
}
