package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCheckLoopbackURL(t *testing.T) {
	ok := []string{"http://127.0.0.1:8080/", "http://127.0.0.2:1/x", "http://[::1]:9000", "http://localhost:1/"}
	for _, u := range ok {
		if _, err := CheckLoopbackURL(u); err != nil {
			t.Errorf("%s: unexpected error %v", u, err)
		}
	}
	bad := []string{"http://10.0.0.1/", "http://192.168.1.1:80/", "http://[2001:db8::1]/", "http://0.0.0.0:80/",
		"https://127.0.0.1/", "ftp://127.0.0.1/", "127.0.0.1:80", "http:///x"}
	for _, u := range bad {
		if _, err := CheckLoopbackURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestDialControlRefusesNonLoopback(t *testing.T) {
	if err := loopbackOnlyControl("tcp", "127.0.0.1:80", nil); err != nil {
		t.Fatal(err)
	}
	if err := loopbackOnlyControl("tcp6", "[::1]:80", nil); err != nil {
		t.Fatal(err)
	}
	if err := loopbackOnlyControl("tcp", "10.1.2.3:80", nil); err == nil {
		t.Fatal("accepted 10.1.2.3")
	}
}

func TestClientKeepsAliveAndIgnoresProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://10.9.9.9:3128")
	t.Setenv("http_proxy", "http://10.9.9.9:3128")
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns++
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewClient(4, 0)
	for i := 0; i < 20; i++ {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatal(resp.Status)
		}
	}
	if conns != 1 {
		t.Fatalf("sequential requests used %d connections, want 1 (keep-alive)", conns)
	}
}
