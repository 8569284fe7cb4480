package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// A minimal RFC 6455 WebSocket client: enough to speak Engine.IO text frames
// to one loopback server. No extensions (permessage-deflate is never
// offered), no subprotocols, no TLS. The same frame code serves the
// baseline server (server=true: masked frames in, unmasked frames out).

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsMaxMessage bounds one assembled message (the server announces
// maxPayload 1,000,000 for Engine.IO packets; a little slack on top).
const wsMaxMessage = 2 << 20

// wsAccept computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// newWSKey returns a random base64-encoded 16-byte Sec-WebSocket-Key.
func newWSKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		binary.LittleEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// CloseError is returned by ReadMessage when the server closed the
// WebSocket with a close frame.
type CloseError struct {
	Code   int // 1005 when the close frame carried no code
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("websocket closed by server: %d %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("websocket closed by server: %d", e.Code)
}

// ProtocolError is a violation of RFC 6455 by the server.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "websocket protocol error: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// HandshakeError is a refused or malformed opening handshake.
type HandshakeError struct {
	Status int    // HTTP status (0 if the response was not HTTP)
	Msg    string // what was wrong, with a body excerpt for non-101 answers
}

func (e *HandshakeError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("websocket handshake: HTTP %d: %s", e.Status, e.Msg)
	}
	return "websocket handshake: " + e.Msg
}

// WSConn is one WebSocket endpoint (client side unless server is set).
// ReadMessage must be called from a single goroutine; WriteMessage and Close
// may be called from any goroutine.
type WSConn struct {
	c      net.Conn
	br     *bufio.Reader
	server bool // expects masked frames, sends unmasked ones

	msg []byte // assembled data message (reused)
	ctl []byte // control frame payload (reused)

	wmu          sync.Mutex
	wbuf         []byte
	rng          uint64 // xorshift state for masking keys
	closeSent    bool
	WriteTimeout time.Duration

	// Counters (read after the reader stopped).
	Pings      int64 // WebSocket pings answered
	Fragmented int64 // continuation frames seen (> 0: the server fragments)
}

// WSDialer opens WebSocket connections to one loopback host:port.
type WSDialer struct {
	Addr    string // host:port to dial (loopback, checked by the dialer)
	Host    string // Host header
	Timeout time.Duration
	ReadBuf int // bufio size (default 8 KiB)
	dialer  net.Dialer
}

func NewWSDialer(addr, host string, timeout time.Duration) *WSDialer {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &WSDialer{Addr: addr, Host: host, Timeout: timeout, ReadBuf: 8 << 10,
		dialer: net.Dialer{Timeout: timeout, Control: loopbackOnlyControl}}
}

// Dial connects and performs the opening handshake for path (request-target
// including the query). The handshake must complete within d.Timeout.
func (d *WSDialer) Dial(ctx context.Context, path string) (*WSConn, error) {
	deadline := time.Now().Add(d.Timeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := d.dialer.DialContext(dctx, "tcp", d.Addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	ws, err := clientHandshake(c, d.Host, path, deadline, d.ReadBuf)
	if !stop() && err == nil {
		err = dctx.Err() // the AfterFunc ran: the deadline was clobbered
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return ws, nil
}

// clientHandshake performs the RFC 6455 §4.1 opening handshake on c.
func clientHandshake(c net.Conn, host, path string, deadline time.Time, bufSize int) (*WSConn, error) {
	if bufSize <= 0 {
		bufSize = 8 << 10
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	key := newWSKey()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nUser-Agent: agentlancer-loadgen\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, bufSize)
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: reading status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return nil, &HandshakeError{Msg: fmt.Sprintf("malformed status line %q", trimForErr(line))}
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return nil, &HandshakeError{Msg: fmt.Sprintf("malformed status line %q", trimForErr(line))}
	}
	var upgrade, connUpgrade bool
	var accept, ext, proto string
	contentLength := int64(-1)
	for {
		h, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("websocket handshake: reading headers: %w", err)
		}
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon <= 0 {
			return nil, &HandshakeError{Status: status, Msg: fmt.Sprintf("malformed header %q", trimForErr(h))}
		}
		name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(val, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Connection")):
			connUpgrade = hasToken(val, "upgrade")
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			accept = string(val)
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Extensions")):
			ext = string(val)
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Protocol")):
			proto = string(val)
		case bytes.EqualFold(name, []byte("Content-Length")):
			contentLength, _ = strconv.ParseInt(string(val), 10, 64)
		}
	}
	if status != 101 {
		var body []byte
		if contentLength > 0 {
			body = make([]byte, min(contentLength, excerptLen))
			n, _ := io.ReadFull(br, body)
			body = body[:n]
		}
		return nil, &HandshakeError{Status: status, Msg: excerpt(body)}
	}
	switch {
	case !upgrade:
		return nil, &HandshakeError{Status: status, Msg: "no 'Upgrade: websocket' header"}
	case !connUpgrade:
		return nil, &HandshakeError{Status: status, Msg: "no 'Connection: Upgrade' header"}
	case accept != wsAccept(key):
		return nil, &HandshakeError{Status: status, Msg: fmt.Sprintf("Sec-WebSocket-Accept %q, want %q", accept, wsAccept(key))}
	case ext != "":
		return nil, &HandshakeError{Status: status, Msg: fmt.Sprintf("server chose extension %q that was not offered", ext)}
	case proto != "":
		return nil, &HandshakeError{Status: status, Msg: fmt.Sprintf("server chose subprotocol %q that was not offered", proto)}
	}
	return newWSConn(c, br, false), nil
}

func newWSConn(c net.Conn, br *bufio.Reader, server bool) *WSConn {
	var seed [8]byte
	rand.Read(seed[:])
	s := binary.LittleEndian.Uint64(seed[:]) | 1
	return &WSConn{c: c, br: br, server: server, rng: s, WriteTimeout: 10 * time.Second}
}

// NetConn is the underlying connection (for deadlines).
func (w *WSConn) NetConn() net.Conn { return w.c }

// ReadMessage returns the next data message (opcode text or binary and its
// payload, valid until the next call). Pings are answered with pongs, pongs
// are ignored, a close frame is answered and returned as *CloseError.
func (w *WSConn) ReadMessage() (int, []byte, error) {
	msgOp := -1
	w.msg = w.msg[:0]
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(w.br, hdr[:]); err != nil {
			return 0, nil, err
		}
		fin := hdr[0]&0x80 != 0
		if hdr[0]&0x70 != 0 {
			return 0, nil, w.fail(1002, protoErr("reserved bits set (0x%02x) without a negotiated extension", hdr[0]&0x70))
		}
		op := int(hdr[0] & 0x0f)
		masked := hdr[1]&0x80 != 0
		if masked != w.server {
			if w.server {
				return 0, nil, w.fail(1002, protoErr("client frame is not masked"))
			}
			return 0, nil, w.fail(1002, protoErr("server frame is masked"))
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(w.br, ext[:]); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(w.br, ext[:]); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
			n = binary.BigEndian.Uint64(ext[:])
			if n>>63 != 0 {
				return 0, nil, w.fail(1002, protoErr("64-bit length with the high bit set"))
			}
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(w.br, mask[:]); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
		}
		if op >= 0x8 { // control frame
			if !fin {
				return 0, nil, w.fail(1002, protoErr("fragmented control frame (opcode %d)", op))
			}
			if n > 125 {
				return 0, nil, w.fail(1002, protoErr("control frame of %d bytes (max 125)", n))
			}
			if cap(w.ctl) < 125 {
				w.ctl = make([]byte, 125)
			}
			p := w.ctl[:n]
			if _, err := io.ReadFull(w.br, p); err != nil {
				return 0, nil, unexpectedEOF(err)
			}
			if masked {
				unmask(p, mask, 0)
			}
			switch op {
			case opPing:
				w.Pings++
				if err := w.WriteMessage(opPong, p); err != nil {
					return 0, nil, err
				}
			case opPong:
			case opClose:
				ce := &CloseError{Code: 1005}
				if n == 1 {
					return 0, nil, w.fail(1002, protoErr("close frame with a 1-byte payload"))
				}
				if n >= 2 {
					ce.Code = int(binary.BigEndian.Uint16(p[:2]))
					ce.Reason = string(p[2:])
				}
				// Echo the status code (RFC 6455 §5.5.1), then drop the TCP
				// connection: the server initiated the close.
				reply := uint16(1000)
				if ce.Code != 1005 {
					reply = uint16(ce.Code)
				}
				w.sendClose(reply, "")
				w.c.Close()
				return 0, nil, ce
			default:
				return 0, nil, w.fail(1002, protoErr("unknown control opcode %d", op))
			}
			continue
		}
		switch op {
		case opText, opBinary:
			if msgOp != -1 {
				return 0, nil, w.fail(1002, protoErr("new data frame (opcode %d) inside a fragmented message", op))
			}
			msgOp = op
		case opContinuation:
			if msgOp == -1 {
				return 0, nil, w.fail(1002, protoErr("continuation frame without a message in progress"))
			}
			w.Fragmented++ // counted per extra frame; > 0 means fragmentation was seen
		default:
			return 0, nil, w.fail(1002, protoErr("unknown data opcode %d", op))
		}
		if uint64(len(w.msg))+n > wsMaxMessage {
			return 0, nil, w.fail(1009, protoErr("message larger than %d bytes", wsMaxMessage))
		}
		start := len(w.msg)
		end := start + int(n)
		if cap(w.msg) < end {
			nb := make([]byte, start, max(end, 2*cap(w.msg), 1024))
			copy(nb, w.msg)
			w.msg = nb
		}
		w.msg = w.msg[:end]
		if _, err := io.ReadFull(w.br, w.msg[start:end]); err != nil {
			return 0, nil, unexpectedEOF(err)
		}
		if masked {
			unmask(w.msg[start:end], mask, 0)
		}
		if fin {
			return msgOp, w.msg, nil
		}
	}
}

// fail sends a close frame with code, closes the connection and returns err.
func (w *WSConn) fail(code uint16, err error) error {
	w.sendClose(code, "")
	w.c.Close()
	return err
}

func (w *WSConn) nextMask() [4]byte {
	// xorshift64*: cheap, unpredictable enough for a benchmark's masks.
	x := w.rng
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	w.rng = x
	v := x * 2685821657736338717
	return [4]byte{byte(v >> 32), byte(v >> 40), byte(v >> 48), byte(v >> 56)}
}

func unmask(p []byte, mask [4]byte, pos int) {
	for i := range p {
		p[i] ^= mask[(pos+i)&3]
	}
}

// appendServerFrame appends one unmasked, final frame to b.
func appendServerFrame(b []byte, op int, payload []byte) []byte {
	b = append(b, 0x80|byte(op))
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// appendClientFrame appends one masked, final frame to b.
func appendClientFrame(b []byte, op int, payload []byte, mask [4]byte) []byte {
	b = append(b, 0x80|byte(op))
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range payload {
		b[start+i] ^= mask[i&3]
	}
	return b
}

var errCloseSent = errors.New("websocket: close already sent")

// WriteMessage sends one frame (text, binary, ping, pong; masked on the
// client side) with a single write.
func (w *WSConn) WriteMessage(op int, payload []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	return w.writeLocked(op, payload)
}

func (w *WSConn) writeLocked(op int, payload []byte) error {
	if w.server {
		w.wbuf = appendServerFrame(w.wbuf[:0], op, payload)
	} else {
		w.wbuf = appendClientFrame(w.wbuf[:0], op, payload, w.nextMask())
	}
	if w.WriteTimeout > 0 {
		w.c.SetWriteDeadline(time.Now().Add(w.WriteTimeout))
	}
	_, err := w.c.Write(w.wbuf)
	return err
}

// WriteText sends a text message.
func (w *WSConn) WriteText(s string) error { return w.WriteMessage(opText, []byte(s)) }

func (w *WSConn) sendClose(code uint16, reason string) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return
	}
	w.closeSent = true
	p := binary.BigEndian.AppendUint16(nil, code)
	p = append(p, reason...)
	w.c.SetWriteDeadline(time.Now().Add(time.Second))
	w.writeLocked(opClose, p)
}

// Close sends a close frame (1000, normal closure) and closes the TCP
// connection without waiting for the peer's answer.
func (w *WSConn) Close() error { return w.CloseWith(1000, "") }

// CloseWith sends a close frame with code and reason, then closes the TCP
// connection.
func (w *WSConn) CloseWith(code uint16, reason string) error {
	w.sendClose(code, reason)
	return w.c.Close()
}

// WriteRaw writes already framed bytes (server side: the same unmasked
// frame can go to many connections) under the write lock.
func (w *WSConn) WriteRaw(frames ...[]byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	if w.WriteTimeout > 0 {
		w.c.SetWriteDeadline(time.Now().Add(w.WriteTimeout))
	}
	if len(frames) == 1 {
		_, err := w.c.Write(frames[0])
		return err
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(w.c)
	return err
}
