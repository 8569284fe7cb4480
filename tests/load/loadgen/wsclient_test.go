package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWSAcceptRFCExample(t *testing.T) {
	// RFC 6455 §1.3.
	if got := wsAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("wsAccept = %q", got)
	}
}

// pipePair returns a client and a server WSConn joined by an in-memory pipe.
func pipePair(t *testing.T) (client, server *WSConn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return newWSConn(a, bufio.NewReader(a), false), newWSConn(b, bufio.NewReader(b), true)
}

func TestWSFrameLengthsBothWays(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		client, server := pipePair(t)
		payload := bytes.Repeat([]byte{'x'}, n)
		for i := range payload {
			payload[i] = byte('a' + i%26)
		}
		// client -> server (masked)
		errc := make(chan error, 1)
		go func() { errc <- client.WriteMessage(opText, payload) }()
		op, got, err := server.ReadMessage()
		if err != nil || op != opText || !bytes.Equal(got, payload) {
			t.Fatalf("n=%d client->server: op=%d len=%d err=%v", n, op, len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// server -> client (unmasked)
		go func() { errc <- server.WriteMessage(opBinary, payload) }()
		op, got, err = client.ReadMessage()
		if err != nil || op != opBinary || !bytes.Equal(got, payload) {
			t.Fatalf("n=%d server->client: op=%d len=%d err=%v", n, op, len(got), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestWSClientFrameIsMasked(t *testing.T) {
	f := appendClientFrame(nil, opText, []byte("hello"), [4]byte{1, 2, 3, 4})
	if f[0] != 0x81 || f[1] != 0x80|5 {
		t.Fatalf("header % x", f[:2])
	}
	if !bytes.Equal(f[2:6], []byte{1, 2, 3, 4}) {
		t.Fatalf("mask % x", f[2:6])
	}
	p := append([]byte(nil), f[6:]...)
	unmask(p, [4]byte{1, 2, 3, 4}, 0)
	if string(p) != "hello" || bytes.Equal(f[6:], []byte("hello")) {
		t.Fatalf("payload not masked correctly: % x", f[6:])
	}
	// Extended lengths.
	f = appendClientFrame(nil, opText, make([]byte, 300), [4]byte{})
	if f[1] != 0x80|126 || binary.BigEndian.Uint16(f[2:4]) != 300 {
		t.Fatalf("16-bit length header % x", f[:4])
	}
	f = appendClientFrame(nil, opText, make([]byte, 70000), [4]byte{})
	if f[1] != 0x80|127 || binary.BigEndian.Uint64(f[2:10]) != 70000 {
		t.Fatalf("64-bit length header % x", f[:10])
	}
}

// rawServer feeds raw bytes to a client WSConn and collects what it writes.
func rawServer(t *testing.T, raw []byte) (*WSConn, *bytes.Buffer, chan struct{}) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	client := newWSConn(a, bufio.NewReader(a), false)
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&out, b)
	}()
	go func() { b.Write(raw) }()
	return client, &out, done
}

func TestWSFragmentedMessageWithInterleavedPing(t *testing.T) {
	var raw []byte
	first := appendServerFrame(nil, opText, []byte("hel"))
	first[0] &^= 0x80
	raw = append(raw, first...)
	raw = appendServerFrame(raw, opPing, []byte("pp"))
	mid := appendServerFrame(nil, opContinuation, []byte("lo "))
	mid[0] &^= 0x80
	raw = append(raw, mid...)
	raw = appendServerFrame(raw, opContinuation, []byte("world"))
	raw = appendServerFrame(raw, opText, []byte("next"))
	client, out, done := rawServer(t, raw)
	op, msg, err := client.ReadMessage()
	if err != nil || op != opText || string(msg) != "hello world" {
		t.Fatalf("got op=%d %q err=%v", op, msg, err)
	}
	_, msg, err = client.ReadMessage()
	if err != nil || string(msg) != "next" {
		t.Fatalf("second message %q err=%v", msg, err)
	}
	if client.Pings != 1 || client.Fragmented != 2 {
		t.Fatalf("pings=%d fragments=%d", client.Pings, client.Fragmented)
	}
	client.NetConn().Close()
	<-done
	// The pong: masked, opcode 0xA, payload "pp".
	b := out.Bytes()
	if len(b) < 8 || b[0] != 0x80|opPong || b[1] != 0x80|2 {
		t.Fatalf("pong frame % x", b)
	}
	p := append([]byte(nil), b[6:8]...)
	unmask(p, [4]byte(b[2:6]), 0)
	if string(p) != "pp" {
		t.Fatalf("pong payload %q", p)
	}
}

func TestWSCloseFrameIsEchoed(t *testing.T) {
	payload := binary.BigEndian.AppendUint16(nil, 4008)
	payload = append(payload, "slow consumer"...)
	client, out, done := rawServer(t, appendServerFrame(nil, opClose, payload))
	_, _, err := client.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4008 || ce.Reason != "slow consumer" {
		t.Fatalf("err = %v", err)
	}
	<-done
	b := out.Bytes()
	if len(b) < 8 || b[0] != 0x80|opClose {
		t.Fatalf("close reply % x", b)
	}
	p := append([]byte(nil), b[6:8]...)
	unmask(p, [4]byte(b[2:6]), 0)
	if binary.BigEndian.Uint16(p) != 4008 {
		t.Fatalf("close reply code %d", binary.BigEndian.Uint16(p))
	}
}

func TestWSProtocolErrors(t *testing.T) {
	masked := appendClientFrame(nil, opText, []byte("x"), [4]byte{9, 9, 9, 9})
	rsv := appendServerFrame(nil, opText, []byte("x"))
	rsv[0] |= 0x40
	bigPing := appendServerFrame(nil, opPing, make([]byte, 126))
	fragPing := appendServerFrame(nil, opPing, nil)
	fragPing[0] &^= 0x80
	cont := appendServerFrame(nil, opContinuation, []byte("x"))
	unknown := appendServerFrame(nil, 0x3, []byte("x"))
	first := appendServerFrame(nil, opText, []byte("a"))
	first[0] &^= 0x80
	nested := append(first, appendServerFrame(nil, opText, []byte("b"))...)
	for name, raw := range map[string][]byte{
		"masked server frame": masked, "reserved bits": rsv, "control frame > 125": bigPing,
		"fragmented control": fragPing, "continuation without start": cont, "unknown opcode": unknown,
		"text inside fragmented message": nested,
	} {
		client, _, _ := rawServer(t, raw)
		_, _, err := client.ReadMessage()
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a ProtocolError", name, err)
		}
	}
}

func TestWSServerRejectsUnmaskedClientFrame(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	server := newWSConn(b, bufio.NewReader(b), true)
	go a.Write(appendServerFrame(nil, opText, []byte("x")))
	go io.Copy(io.Discard, a)
	_, _, err := server.ReadMessage()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
}

// fakeUpgrade serves one handshake on a listener with the given answer.
func fakeUpgrade(t *testing.T, answer func(key string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		key := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
				key = strings.TrimSpace(v)
			}
		}
		io.WriteString(c, answer(key))
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

func TestWSHandshake(t *testing.T) {
	ok := func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n" +
			string(appendServerFrame(nil, opText, []byte("0{}")))
	}
	cases := []struct {
		name   string
		answer func(string) string
		want   string // "" = success
	}{
		{"ok", ok, ""},
		{"wrong accept", func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"
		}, "Sec-WebSocket-Accept"},
		{"no upgrade header", func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n"
		}, "Upgrade"},
		{"extension not offered", func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) +
				"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
		}, "permessage-deflate"},
		{"refused with 401", func(string) string {
			return "HTTP/1.1 401 Unauthorized\r\nContent-Length: 16\r\n\r\n{\"error\":\"key\"}\n"
		}, `HTTP 401: {"error":"key"}`},
	}
	for _, tc := range cases {
		addr := fakeUpgrade(t, tc.answer)
		d := NewWSDialer(addr, addr, 2*time.Second)
		ws, err := d.Dial(context.Background(), "/ws/agent/?EIO=4&transport=websocket")
		if tc.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			op, msg, err := ws.ReadMessage()
			if err != nil || op != opText || string(msg) != "0{}" {
				t.Fatalf("%s: first message %q err %v", tc.name, msg, err)
			}
			ws.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestWSDialRefusesNonLoopback(t *testing.T) {
	d := NewWSDialer("192.0.2.1:80", "192.0.2.1", time.Second)
	if _, err := d.Dial(context.Background(), "/"); err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Fatalf("err = %v", err)
	}
}
