package sidecar

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/reprise-dev/reprise"
	"github.com/reprise-dev/reprise/internal/grpcapi/pb"
)

// startApp starts an App with no registrations on a SQLite store of its own.
func startApp(t *testing.T, defs ...reprise.Definition) *reprise.App {
	t.Helper()
	app := reprise.NewApp(reprise.WithSQLiteFile(filepath.Join(t.TempDir(), "app.db")), reprise.WithLogger(slog.New(slog.DiscardHandler)))
	app.Register(defs...)
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	return app
}

func listen(t *testing.T, app *reprise.App, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	opts.Logger = slog.New(slog.DiscardHandler)
	srv, err := Listen(context.Background(), app, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// certs is a CA and the server and client certificates it signed, as PEM files.
type certs struct {
	dir                           string
	pool                          *x509.CertPool
	client                        tls.Certificate
	caFile, serverCert, serverKey string
}

func newCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, server bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := certs{dir: dir, pool: x509.NewCertPool()}
	c.pool.AddCert(ca)
	c.caFile = write("ca.pem", "CERTIFICATE", caDER)
	sDER, sKey := issue(2, true)
	c.serverCert = write("server.pem", "CERTIFICATE", sDER)
	skDER, _ := x509.MarshalECPrivateKey(sKey)
	c.serverKey = write("server-key.pem", "EC PRIVATE KEY", skDER)
	cDER, cKey := issue(3, false)
	c.client = tls.Certificate{Certificate: [][]byte{cDER}, PrivateKey: cKey}
	return c
}

func hello(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pb.NewTaskHubSidecarServiceClient(conn).Hello(ctx, &emptypb.Empty{})
	return err
}

// TestTLS serves over TLS: a client that trusts the CA connects, a plain-text one does not; with
// a client CA, a client without a certificate is refused and one with a certificate is served.
func TestTLS(t *testing.T) {
	c := newCerts(t)
	app := startApp(t)

	cfg, err := LoadTLS(c.serverCert, c.serverKey, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := listen(t, app, Options{TLS: cfg})
	addr := srv.Addr().String()
	if err := hello(t, addr, credentials.NewTLS(&tls.Config{RootCAs: c.pool})); err != nil {
		t.Errorf("Hello over TLS: %v", err)
	}
	if err := hello(t, addr, insecure.NewCredentials()); err == nil {
		t.Error("Hello in plain text to a TLS server: no error")
	}

	mcfg, err := LoadTLS(c.serverCert, c.serverKey, c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	msrv := listen(t, app, Options{TLS: mcfg})
	maddr := msrv.Addr().String()
	if err := hello(t, maddr, credentials.NewTLS(&tls.Config{RootCAs: c.pool})); err == nil {
		t.Error("Hello without a client certificate to a server that requires one: no error")
	}
	if err := hello(t, maddr, credentials.NewTLS(&tls.Config{RootCAs: c.pool, Certificates: []tls.Certificate{c.client}})); err != nil {
		t.Errorf("Hello with a client certificate: %v", err)
	}

	if _, err := LoadTLS(c.serverCert, filepath.Join(c.dir, "missing.pem"), ""); err == nil {
		t.Error("LoadTLS with a missing key: no error")
	}
	if _, err := LoadTLS(c.serverCert, c.serverKey, c.serverKey); err == nil {
		t.Error("LoadTLS with a client CA file that holds no certificate: no error")
	}
}
