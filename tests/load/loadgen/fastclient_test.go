package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func parse(t *testing.T, raw, method string, keep bool) (int, string, bool, error) {
	t.Helper()
	st, b, reuse, err := readResponse(bufio.NewReaderSize(strings.NewReader(raw), 64), method, keep)
	return st, string(b), reuse, err
}

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name, raw, method string
		keep              bool
		status            int
		body              string
		reuse             bool
	}{
		{"204", "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", "GET", false, 204, "", true},
		{"content-length kept", "HTTP/1.1 201 Created\r\ncontent-length: 9\r\n\r\n{\"id\":42}", "POST", true, 201, `{"id":42}`, true},
		{"content-length discarded", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", false, 200, "", true},
		{"non-2xx body always kept", "HTTP/1.1 409 Conflict\r\nContent-Length: 4\r\n\r\nnope", "POST", false, 409, "nope", true},
		{"long body over buffer", "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + strings.Repeat("x", 300), "GET", true, 200, strings.Repeat("x", 300), true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"id\r\n4\r\n\":7}\r\n0\r\nX-Trailer: y\r\n\r\n", "GET", true, 200, `{"id":7}`, true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", true, 200, "ok", false},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nuntil eof", "GET", true, 200, "until eof", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", true, 200, "ok", false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", "GET", true, 200, "ok", true},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", "POST", false, 204, "", true},
		{"LF only", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "GET", true, 200, "ok", true},
		{"HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "HEAD", true, 200, "", true},
	}
	for _, c := range cases {
		st, body, reuse, err := parse(t, c.raw, c.method, c.keep)
		if err != nil || st != c.status || body != c.body || reuse != c.reuse {
			t.Errorf("%s: got (%d, %q, %v, %v), want (%d, %q, %v)", c.name, st, body, reuse, err, c.status, c.body, c.reuse)
		}
	}
	bad := map[string]string{
		"empty":            "",
		"garbage":          "SSH-2.0-OpenSSH\r\n\r\n",
		"truncated body":   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"truncated header": "HTTP/1.1 200 OK\r\nContent-Le",
		"bad length":       "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"bad chunk":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	}
	for name, raw := range bad {
		if _, _, _, err := parse(t, raw, "GET", true); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestReadResponsePipelined(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\n"))
	if st, b, _, err := readResponse(br, "GET", true); err != nil || st != 200 || string(b) != "a" {
		t.Fatal(st, string(b), err)
	}
	if st, _, _, err := readResponse(br, "GET", true); err != nil || st != 204 {
		t.Fatal(st, err)
	}
}

// Against Go's own server: headers/body arrive intact, connections are
// reused, the pool never exceeds conns.
func TestFastClientAgainstNetHTTP(t *testing.T) {
	var newConns, active, maxActive atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"method":%q,"key":%q,"ct":%q,"body":%s}`, r.Method, r.Header.Get("x-api-key"), r.Header.Get("Content-Type"), body)
		case "/chunked":
			w.Write([]byte(strings.Repeat("y", 100)))
			w.(http.Flusher).Flush()
			w.Write([]byte("z"))
		default:
			w.WriteHeader(204)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewFastClient(strings.TrimPrefix(srv.URL, "http://"), 4, 5*time.Second)
	ctx := context.Background()
	st, b, err := c.Do(ctx, "POST", "/echo", "k-1", []byte(`{"a":1}`), true)
	if err != nil || st != 200 || string(b) != `{"method":"POST","key":"k-1","ct":"application/json","body":{"a":1}}` {
		t.Fatalf("%d %q %v", st, b, err)
	}
	st, b, err = c.Do(ctx, "GET", "/chunked", "", nil, true)
	if err != nil || st != 200 || string(b) != strings.Repeat("y", 100)+"z" {
		t.Fatalf("%d %q %v", st, b, err)
	}
	done := make(chan error)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				if st, _, err := c.Do(ctx, "GET", "/", "", nil, false); err != nil || st != 204 {
					done <- fmt.Errorf("%d %v", st, err)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := newConns.Load(); n > 4 {
		t.Fatalf("%d connections opened, pool is 4", n)
	}
	if m := maxActive.Load(); m > 4 {
		t.Fatalf("%d concurrent requests, pool is 4", m)
	}
}

// A server that silently closes a kept-alive connection: the next GET is
// retried once on a fresh connection instead of failing.
func TestFastClientRetriesStaleKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func(conn net.Conn) { // one response, then close without saying so
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				conn.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			}(conn)
		}
	}()
	c := NewFastClient(ln.Addr().String(), 1, 2*time.Second)
	for i := 0; i < 3; i++ {
		time.Sleep(20 * time.Millisecond) // let the server close
		if st, _, err := c.Do(context.Background(), "GET", "/", "", nil, false); err != nil || st != 204 {
			t.Fatalf("request %d: %d %v", i, st, err)
		}
	}
	if accepted.Load() != 3 {
		t.Fatalf("accepted %d", accepted.Load())
	}
}

func TestFastClientTimeoutAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := NewFastClient(ln.Addr().String(), 1, 200*time.Millisecond)
	t0 := time.Now()
	if _, _, err := c.Do(context.Background(), "GET", "/", "", nil, false); err == nil {
		t.Fatal("no timeout")
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("timeout took %v", d)
	}
	c = NewFastClient(ln.Addr().String(), 1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if _, _, err := c.Do(ctx, "GET", "/", "", nil, false); err == nil {
		t.Fatal("no cancel")
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("cancel took %v", d)
	}
}
