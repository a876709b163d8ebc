package localguard

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
)

func TestCheckBrowser(t *testing.T) {
	g, err := New([]string{"devbox.lan", "[fd00::5]", "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, host string
		header       []string
		refused      bool
	}{
		{"GET", "localhost:7071", nil, false},
		{"GET", "127.0.0.1", nil, false},
		{"GET", "127.200.0.1:1", nil, false},
		{"GET", "[::1]:7071", nil, false},
		{"GET", "[::ffff:127.0.0.1]:7071", nil, false},
		{"GET", "devbox.lan:7071", nil, false},
		{"GET", "[fd00::5]:80", nil, false},
		{"GET", "10.0.0.5", nil, false},
		{"GET", "", nil, true},
		{"GET", "attacker.example", nil, true},
		{"GET", "localhost.attacker.example", nil, true},
		{"GET", "sub.localhost", nil, true},
		{"GET", "10.0.0.6", nil, true},
		{"GET", "0.0.0.0:7071", nil, true},
		{"POST", "localhost", nil, false},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://a.example"}, true},
		{"PUT", "localhost", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://a.localhost.example"}, true},
		{"DELETE", "localhost", []string{"Origin", "https://a.example"}, true},
		{"POST", "localhost", []string{"Origin", "null"}, true},
		{"POST", "localhost", []string{"Origin", "file://"}, true},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "cross-site"}, true},
		{"POST", "localhost:7071", []string{"Origin", "http://localhost:7071"}, false},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "same-origin"}, false},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "none"}, false},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://127.0.0.1:5173"}, false},
		{"POST", "localhost", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://devbox.lan:8080"}, false},
		{"GET", "localhost", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://a.example"}, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "/durabletask/instances", nil)
		r.Host = tc.host
		for i := 0; i+1 < len(tc.header); i += 2 {
			r.Header.Set(tc.header[i], tc.header[i+1])
		}
		if got := g.CheckBrowser(r) != nil; got != tc.refused {
			t.Errorf("%s Host %q %v: refused %v, want %v", tc.method, tc.host, tc.header, got, tc.refused)
		}
	}
}

func TestNewRefusesEntriesThatNeverMatch(t *testing.T) {
	for _, h := range []string{"http://x.lan", "x.lan:80", "*.lan", "x.lan/path"} {
		if _, err := New([]string{h}); err == nil {
			t.Errorf("New(%q): no error", h)
		}
	}
}

func TestCheckLoopbackPeerPrefersTheConnection(t *testing.T) {
	var g *Guard
	r := httptest.NewRequest("GET", "/durabletask/instances", nil)
	r.RemoteAddr = "127.0.0.1:1" // as middleware trusting X-Forwarded-For might have rewritten it
	conn := fakeConn{remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5}}
	r = r.WithContext(Peer(context.Background(), conn))
	if g.CheckLoopbackPeer(r, "/durabletask") == nil {
		t.Error("a remote connection passed because RemoteAddr says loopback")
	}
	r.RemoteAddr = "192.0.2.7:5"
	r = r.WithContext(Peer(context.Background(), fakeConn{remote: &net.TCPAddr{IP: net.IPv6loopback, Port: 5}}))
	if why := g.CheckLoopbackPeer(r, "/durabletask"); why != nil {
		t.Errorf("a loopback connection was refused: %v", why)
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }
