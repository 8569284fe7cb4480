package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// FastClient is a minimal HTTP/1.1 keep-alive client for one loopback
// host:port. It exists because net/http (two goroutines per connection,
// header maps, allocations) made the generator, not the server, the
// bottleneck near 15k req/s on a 2-core machine, and doubled the latency
// floor; this client needs ~2/3 of the CPU. It writes each request with one syscall and
// parses responses (Content-Length, chunked, close-delimited, 1xx, 204/304)
// from a bufio.Reader. Requests wait for a free connection when all `conns`
// are busy; that wait is part of the measured latency.
type FastClient struct {
	addr    string // host:port to dial
	host    string // Host header
	timeout time.Duration
	idle    chan *fconn
	slots   chan struct{} // one token per open connection
	dialer  net.Dialer
}

type fconn struct {
	c      net.Conn
	br     *bufio.Reader
	wbuf   []byte
	reused bool
}

// NewFastClient returns a client for hostport (already checked to be
// loopback; the dialer re-checks every address it connects to).
func NewFastClient(hostport string, conns int, timeout time.Duration) *FastClient {
	if conns < 1 {
		conns = 1
	}
	if timeout <= 0 {
		timeout = time.Hour
	}
	return &FastClient{
		addr:    hostport,
		host:    hostport,
		timeout: timeout,
		idle:    make(chan *fconn, conns),
		slots:   make(chan struct{}, conns),
		dialer:  net.Dialer{Timeout: 3 * time.Second, Control: loopbackOnlyControl},
	}
}

var errTimeout = errors.New("timeout waiting for a free connection")

func (f *FastClient) acquire(ctx context.Context, deadline time.Time) (*fconn, error) {
	select {
	case fc := <-f.idle:
		return fc, nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case fc := <-f.idle:
		return fc, nil
	case f.slots <- struct{}{}:
		dctx, cancel := context.WithDeadline(ctx, deadline)
		c, err := f.dialer.DialContext(dctx, "tcp", f.addr)
		cancel()
		if err != nil {
			<-f.slots
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		return &fconn{c: c, br: bufio.NewReaderSize(c, 16<<10), wbuf: make([]byte, 0, 1024)}, nil
	case <-t.C:
		return nil, errTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *FastClient) release(fc *fconn, reuse bool) {
	if reuse {
		fc.reused = true
		f.idle <- fc // never blocks: at most cap(slots) connections exist
		return
	}
	fc.c.Close()
	<-f.slots
}

// Do sends one request and reads the whole response. The body is returned
// when keep is set or the status is not 2xx (at most 1 MiB kept).
func (f *FastClient) Do(ctx context.Context, method, path, key string, body []byte, keep bool) (int, []byte, error) {
	deadline := time.Now().Add(f.timeout)
	for attempt := 0; ; attempt++ {
		fc, err := f.acquire(ctx, deadline)
		if err != nil {
			return 0, nil, err
		}
		status, rb, reuse, sent, err := f.roundTrip(ctx, fc, deadline, method, path, key, body, keep)
		f.release(fc, err == nil && reuse)
		if err != nil {
			// A kept-alive connection the server had already closed: the
			// request never reached it, so try once more on a fresh one.
			if attempt == 0 && fc.reused && ctx.Err() == nil && (!sent || method == "GET") && isStaleConnErr(err) {
				continue
			}
			return 0, nil, err
		}
		return status, rb, nil
	}
}

func isStaleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, errNothingRead)
}

var errNothingRead = errors.New("connection closed before any response byte")

func (f *FastClient) roundTrip(ctx context.Context, fc *fconn, deadline time.Time, method, path, key string, body []byte, keep bool) (status int, rb []byte, reuse, sent bool, err error) {
	if err := fc.c.SetDeadline(deadline); err != nil {
		return 0, nil, false, false, err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { fc.c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	b := fc.wbuf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, f.host...)
	b = append(b, "\r\nUser-Agent: agentlancer-loadgen\r\n"...)
	if key != "" {
		b = append(b, "x-api-key: "...)
		b = append(b, key...)
		b = append(b, "\r\n"...)
	}
	if body != nil || method == "POST" || method == "PUT" || method == "PATCH" {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	fc.wbuf = b
	if _, err := fc.c.Write(b); err != nil {
		return 0, nil, false, false, err
	}
	status, rb, reuse, err = readResponse(fc.br, method, keep)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return status, rb, reuse, true, err
}

const maxKeep = 1 << 20

// readResponse parses one HTTP/1.x response from br. reuse reports whether
// the connection may carry another request.
func readResponse(br *bufio.Reader, method string, keep bool) (status int, body []byte, reuse bool, err error) {
	first := true
	for {
		line, err := readLine(br)
		if err != nil {
			if first && errors.Is(err, io.EOF) {
				return 0, nil, false, errNothingRead
			}
			return 0, nil, false, err
		}
		first = false
		// "HTTP/1.1 204 No Content"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return 0, nil, false, fmt.Errorf("malformed status line %q", trimForErr(line))
		}
		http10 := line[7] == '0'
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil || status < 100 {
			return 0, nil, false, fmt.Errorf("malformed status line %q", trimForErr(line))
		}
		contentLength := int64(-1)
		chunked, closeConn, keepAlive := false, http10, false
		for {
			h, err := readLine(br)
			if err != nil {
				return 0, nil, false, err
			}
			if len(h) == 0 {
				break
			}
			colon := bytes.IndexByte(h, ':')
			if colon <= 0 {
				return 0, nil, false, fmt.Errorf("malformed header %q", trimForErr(h))
			}
			name, val := h[:colon], bytes.TrimSpace(h[colon+1:])
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				contentLength, err = strconv.ParseInt(string(val), 10, 64)
				if err != nil || contentLength < 0 {
					return 0, nil, false, fmt.Errorf("bad Content-Length %q", val)
				}
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				chunked = hasToken(val, "chunked")
			case bytes.EqualFold(name, []byte("Connection")):
				if hasToken(val, "close") {
					closeConn = true
				}
				if hasToken(val, "keep-alive") {
					keepAlive = true
				}
			}
		}
		if http10 && keepAlive {
			closeConn = false
		}
		if status >= 100 && status < 200 && status != 101 {
			continue // informational response: the real one follows
		}
		want := keep || status < 200 || status >= 300
		var sink *limitedBuf
		if want {
			sink = &limitedBuf{}
		}
		switch {
		case status == 204 || status == 304 || method == "HEAD" || status == 101:
			// no body
		case chunked:
			if err := readChunked(br, sink); err != nil {
				return 0, nil, false, err
			}
		case contentLength >= 0:
			if err := copyN(br, sink, contentLength); err != nil {
				return 0, nil, false, err
			}
		default: // delimited by connection close
			if err := copyAll(br, sink); err != nil {
				return 0, nil, false, err
			}
			closeConn = true
		}
		if sink != nil {
			body = sink.b
		}
		return status, body, !closeConn, nil
	}
}

type limitedBuf struct{ b []byte }

func (l *limitedBuf) write(p []byte) {
	if l == nil {
		return
	}
	if room := maxKeep - len(l.b); room > 0 {
		if len(p) > room {
			p = p[:room]
		}
		l.b = append(l.b, p...)
	}
}

func copyN(br *bufio.Reader, sink *limitedBuf, n int64) error {
	for n > 0 {
		if sink == nil {
			d, err := br.Discard(int(min(n, 1<<30)))
			n -= int64(d)
			if err != nil {
				return unexpectedEOF(err)
			}
			continue
		}
		chunk, err := br.Peek(int(min(n, int64(br.Size()))))
		if len(chunk) > 0 {
			sink.write(chunk)
			br.Discard(len(chunk))
			n -= int64(len(chunk))
		}
		if err != nil && n > 0 {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return unexpectedEOF(err)
		}
	}
	return nil
}

func copyAll(br *bufio.Reader, sink *limitedBuf) error {
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		sink.write(buf[:n])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func readChunked(br *bufio.Reader, sink *limitedBuf) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return unexpectedEOF(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad chunk size %q", trimForErr(line))
		}
		if size == 0 {
			for { // trailers up to the empty line
				t, err := readLine(br)
				if err != nil {
					return unexpectedEOF(err)
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if err := copyN(br, sink, size); err != nil {
			return err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			if err == nil {
				err = errors.New("missing CRLF after chunk")
			}
			return unexpectedEOF(err)
		}
	}
}

// readLine returns one line without its CRLF (or LF). The slice is only
// valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("response line too long")
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func hasToken(v []byte, tok string) bool {
	for _, part := range bytes.Split(v, []byte(",")) {
		if bytes.EqualFold(bytes.TrimSpace(part), []byte(tok)) {
			return true
		}
	}
	return false
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func trimForErr(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}
