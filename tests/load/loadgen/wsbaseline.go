package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// wsbaseline: the ceiling for the notifier benchmark, like nginx `return
// 204` is for the HTTP ones. An in-memory Go server with exactly the surface
// wsfanout uses: signup, job creation (201, then one onNewTask pushed at once
// to every socket of the client and of the provider), the Engine.IO 4 /
// Socket.IO 5 handshake on /ws/agent/ and catch-up (since) from an
// in-memory per-agent log. No durability, no broker, no authentication
// beyond a map lookup.

type bEvent struct {
	ev    int64
	frame []byte // the whole WebSocket frame (unmasked: same bytes for every socket)
}

type bAgent struct {
	id, key string

	mu     sync.Mutex
	nextEv int64
	log    []bEvent
	conns  []*WSConn
}

type baseline struct {
	maxPerAgent  int
	logLimit     int
	pingInterval time.Duration
	pingTimeout  time.Duration

	mu    sync.RWMutex
	byKey map[string]*bAgent
	byID  map[string]*bAgent

	nextJob   atomic.Int64
	nextSid   atomic.Uint64
	sidTag    string
	accepted  atomic.Int64
	refused   atomic.Int64
	open      atomic.Int64
	peak      atomic.Int64
	events    atomic.Int64
	frames    atomic.Int64
	writeErrs atomic.Int64
	closing   atomic.Bool

	// Test hooks: misbehave so that the generator's accounting can be
	// checked. For every event_id divisible by dropEvery the agent's first
	// socket is skipped; divisible by dupEvery it gets the frame twice.
	// fragment sends each event as a text frame + a ping + a continuation.
	dropEvery, dupEvery int64
	fragment            bool
}

func newBaseline(maxPerAgent int, pingInterval, pingTimeout time.Duration) *baseline {
	var tag [4]byte
	rand.Read(tag[:])
	return &baseline{
		maxPerAgent: maxPerAgent, logLimit: 100000,
		pingInterval: pingInterval, pingTimeout: pingTimeout,
		byKey: map[string]*bAgent{}, byID: map[string]*bAgent{},
		sidTag: hex.EncodeToString(tag[:]),
	}
}

func cmdWSBaseline(args []string) int {
	fs := flag.NewFlagSet("wsbaseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only); port 0 picks one")
	maxPer := fs.Int("max-conns-per-agent", 5, "refuse more sockets than this per agent (0: no limit), like notifier.ws.max_connections_per_agent")
	pingInterval := fs.Duration("ping-interval", 25*time.Second, "Engine.IO pingInterval")
	pingTimeout := fs.Duration("ping-timeout", 20*time.Second, "Engine.IO pingTimeout")
	portFile := fs.String("port-file", "", "write the chosen port to this file once listening")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "wsbaseline: -addr %q: want a loopback ip:port\n", *addr)
		return exitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbaseline:", err)
		return 1
	}
	b := newBaseline(*maxPer, *pingInterval, *pingTimeout)
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 15 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: nil}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(os.Stderr, "wsbaseline: listening on 127.0.0.1:%d (max %d sockets per agent)\n", port, *maxPer)
	if *portFile != "" {
		os.WriteFile(*portFile, []byte(strconv.Itoa(port)+"\n"), 0o644)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		b.shutdown()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "wsbaseline:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wsbaseline: %d agents, %d jobs, %d events, %d frames pushed (%d write errors); sockets accepted %d, refused %d, peak open %d\n",
		len(b.byID), b.nextJob.Load(), b.events.Load(), b.frames.Load(), b.writeErrs.Load(), b.accepted.Load(), b.refused.Load(), b.peak.Load())
	return exitOK
}

func (b *baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/readyz" || r.URL.Path == "/healthz":
		w.WriteHeader(200)
		io.WriteString(w, "ok\n")
	case r.URL.Path == "/api/agent/signup" && r.Method == "POST":
		b.signup(w, r)
	case r.URL.Path == "/api/agents/jobs" && r.Method == "POST":
		b.createJob(w, r)
	case (r.URL.Path == "/ws/agent" || r.URL.Path == "/ws/agent/") && r.Method == "GET":
		b.serveWS(w, r)
	default:
		jsonError(w, 404, "not found")
	}
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}

var agentIDEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func (b *baseline) signup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || body.Name == "" {
		jsonError(w, 400, "name is required")
		return
	}
	var raw [20]byte
	rand.Read(raw[:])
	a := &bAgent{
		id:  "agt_" + strings.ToLower(agentIDEnc.EncodeToString(raw[:10])),
		key: "alk_" + hex.EncodeToString(raw[10:]),
	}
	b.mu.Lock()
	b.byKey[a.key] = a
	b.byID[a.id] = a
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(201)
	name, _ := json.Marshal(body.Name)
	fmt.Fprintf(w, `{"agent_id":%q,"api_key":%q,"name":%s}`, a.id, a.key, name)
}

func (b *baseline) agentByKey(key string) *bAgent {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.byKey[key]
}

func (b *baseline) createJob(w http.ResponseWriter, r *http.Request) {
	client := b.agentByKey(r.Header.Get("x-api-key"))
	if client == nil {
		jsonError(w, 401, "invalid api key")
		return
	}
	var body struct {
		ProviderID         string `json:"providerId"`
		ServiceRequirement string `json:"serviceRequirement"`
		Budget             string `json:"budget"`
		TokenAddress       string `json:"tokenAddress"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		jsonError(w, 400, "invalid JSON")
		return
	}
	b.mu.RLock()
	provider := b.byID[body.ProviderID]
	b.mu.RUnlock()
	if provider == nil {
		jsonError(w, 400, "unknown providerId")
		return
	}
	id := b.nextJob.Add(1)
	job := appendJobJSON(nil, id, client.id, provider.id, body.ServiceRequirement, body.Budget, body.TokenAddress, time.Now())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(job)))
	w.WriteHeader(201)
	w.Write(job)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	b.push(client, job)
	if provider != client {
		b.push(provider, job)
	}
}

// appendJobJSON renders a freshly created job like the job service does
// (phase 0, one REQUEST memo), about 900 bytes.
func appendJobJSON(dst []byte, id int64, client, provider, req, budget, token string, now time.Time) []byte {
	ts := now.UTC().Format("2006-01-02T15:04:05.000Z")
	exp := now.Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	q := func(s string) []byte { v, _ := json.Marshal(s); return v }
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"phase":0,"phaseName":"REQUEST","clientId":`...)
	dst = append(dst, q(client)...)
	dst = append(dst, `,"providerId":`...)
	dst = append(dst, q(provider)...)
	dst = append(dst, `,"evaluatorId":null,"serviceRequirement":`...)
	dst = append(dst, q(req)...)
	dst = append(dst, `,"budget":`...)
	dst = append(dst, q(budget)...)
	dst = append(dst, `,"tokenAddress":`...)
	dst = append(dst, q(token)...)
	dst = append(dst, `,"escrowVerified":false,"escrow":null,"claimStatus":"none","memos":[{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"type":0,"typeName":"REQUEST","content":`...)
	dst = append(dst, q(req)...)
	dst = append(dst, `,"senderId":`...)
	dst = append(dst, q(client)...)
	dst = append(dst, `,"status":"pending","createdAt":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `"}],"deliverable":null,"deliverablePayableDetail":null,"deliveredAt":null,"rejectionReason":null,"clientOperationId":null,"contractId":null,"expiredAt":"`...)
	dst = append(dst, exp...)
	dst = append(dst, `","createdAt":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `","updatedAt":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `","version":1}`...)
	return dst
}

// eventFrame renders the WebSocket frame of 42<ev>["onNewTask",{job…,"event_id":ev,"change":…}].
func eventFrame(ev int64, job []byte) []byte {
	p := make([]byte, 0, len(job)+96)
	p = append(p, "42"...)
	p = strconv.AppendInt(p, ev, 10)
	p = append(p, `["onNewTask",`...)
	p = append(p, job[:len(job)-1]...) // without the closing brace
	p = append(p, `,"event_id":`...)
	p = strconv.AppendInt(p, ev, 10)
	p = append(p, `,"change":{"action":"create","to":0}}]`...)
	return appendServerFrame(make([]byte, 0, len(p)+10), opText, p)
}

// push appends the event to the agent's log and writes it to every socket
// of the agent, in event_id order (the agent lock is held throughout).
func (b *baseline) push(a *bAgent, job []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextEv++
	frame := eventFrame(a.nextEv, job)
	if b.fragment {
		frame = fragmentFrame(frame)
	}
	a.log = append(a.log, bEvent{ev: a.nextEv, frame: frame})
	if len(a.log) > b.logLimit {
		a.log = append(a.log[:0], a.log[len(a.log)-b.logLimit/2:]...)
	}
	b.events.Add(1)
	for i, c := range a.conns {
		if i == 0 && b.dropEvery > 0 && a.nextEv%b.dropEvery == 0 {
			continue
		}
		if i == 0 && b.dupEvery > 0 && a.nextEv%b.dupEvery == 0 {
			c.WriteRaw(frame)
		}
		if err := c.WriteRaw(frame); err != nil {
			b.writeErrs.Add(1)
			c.NetConn().Close() // its reader notices and unregisters it
			continue
		}
		b.frames.Add(1)
	}
}

// fragmentFrame splits a single unmasked text frame into a non-final text
// frame, a ping and a final continuation frame (test hook).
func fragmentFrame(frame []byte) []byte {
	hl := 2
	switch frame[1] & 0x7f {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	p := frame[hl:]
	half := len(p) / 2
	out := appendServerFrame(nil, opText, p[:half])
	out[0] &^= 0x80 // not final
	out = appendServerFrame(out, opPing, []byte("hb"))
	cont := appendServerFrame(nil, opContinuation, p[half:])
	return append(out, cont...)
}

func (a *bAgent) remove(c *WSConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, x := range a.conns {
		if x == c {
			a.conns[i] = a.conns[len(a.conns)-1]
			a.conns = a.conns[:len(a.conns)-1]
			return
		}
	}
}

func textFrame(s string) []byte { return appendServerFrame(nil, opText, []byte(s)) }

func (b *baseline) serveWS(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !hasToken([]byte(r.Header.Get("Connection")), "upgrade") {
		jsonError(w, 400, "expected a WebSocket upgrade")
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		jsonError(w, 426, "unsupported WebSocket version")
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
		jsonError(w, 400, "need Sec-WebSocket-Key, EIO=4 and transport=websocket")
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		jsonError(w, 500, "cannot hijack")
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n"
	sid := b.sidTag + strconv.FormatUint(b.nextSid.Add(1), 36)
	open, _ := json.Marshal(eioOpen{Sid: sid, Upgrades: []string{}, PingInterval: b.pingInterval.Milliseconds(),
		PingTimeout: b.pingTimeout.Milliseconds(), MaxPayload: 1000000})
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(append([]byte(resp), textFrame("0"+string(open))...)); err != nil {
		return
	}
	ws := newWSConn(nc, brw.Reader, true)
	b.session(ws, sid)
}

// session runs one socket after the Engine.IO OPEN was sent.
func (b *baseline) session(ws *WSConn, sid string) {
	nc := ws.NetConn()
	nc.SetReadDeadline(time.Now().Add(b.pingTimeout))
	op, msg, err := ws.ReadMessage()
	if err != nil || op != opText {
		return
	}
	if len(msg) < 2 || msg[0] != '4' || msg[1] != '0' {
		ws.WriteText(`44{"message":"expected a CONNECT packet","data":{"code":"bad_request"}}`)
		ws.CloseWith(1008, "")
		return
	}
	var auth struct {
		APIKey string          `json:"apiKey"`
		Since  json.RawMessage `json:"since"`
	}
	if len(msg) > 2 {
		if err := json.Unmarshal(msg[2:], &auth); err != nil {
			ws.WriteText(`44{"message":"malformed CONNECT payload","data":{"code":"bad_request"}}`)
			ws.CloseWith(1008, "")
			return
		}
	}
	since := int64(-1)
	if len(auth.Since) > 0 && string(auth.Since) != "null" {
		n, ok := jsonInt(auth.Since)
		if !ok || n < 0 {
			ws.WriteText(`44{"message":"since must be a non-negative integer","data":{"code":"bad_request"}}`)
			ws.CloseWith(1008, "")
			return
		}
		since = n
	}
	a := b.agentByKey(auth.APIKey)
	if a == nil {
		b.refused.Add(1)
		ws.WriteText(`44{"message":"invalid api key","data":{"code":"unauthorized"}}`)
		ws.CloseWith(1008, "")
		return
	}

	a.mu.Lock()
	if b.maxPerAgent > 0 && len(a.conns) >= b.maxPerAgent {
		a.mu.Unlock()
		b.refused.Add(1)
		ws.WriteText(`44{"message":"too many connections for this agent","data":{"code":"too_many_connections"}}`)
		ws.CloseWith(1008, "")
		return
	}
	a.conns = append(a.conns, ws)
	head := a.nextEv
	var backlog [][]byte
	if since >= 0 {
		i := sort.Search(len(a.log), func(i int) bool { return a.log[i].ev > since })
		backlog = make([][]byte, 0, len(a.log)-i+2)
		for _, e := range a.log[i:] {
			backlog = append(backlog, e.frame)
		}
	}
	// Hold this socket's write lock before letting go of the agent: live
	// events pushed from now on queue behind the backlog, in order.
	ws.wmu.Lock()
	a.mu.Unlock()
	defer a.remove(ws)

	sinceJSON := "null"
	if since >= 0 {
		sinceJSON = strconv.FormatInt(since, 10)
	}
	first := [][]byte{
		textFrame(`40{"sid":"` + sid + `"}`),
		textFrame(`42["roomJoined",{"agent_id":"` + a.id + `","since":` + sinceJSON + `,"head_event_id":` + strconv.FormatInt(head, 10) + `}]`),
	}
	frames := append(first, backlog...)
	nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	bufs := net.Buffers(frames)
	_, err = bufs.WriteTo(nc)
	ws.wmu.Unlock()
	if err != nil {
		return
	}
	b.frames.Add(int64(len(backlog)))
	b.accepted.Add(1)
	for n := b.open.Add(1); ; {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer b.open.Add(-1)

	// Heartbeat: "2" every pingInterval, "3" expected within pingTimeout.
	nc.SetReadDeadline(time.Time{})
	var pingMu sync.Mutex
	stopped := false
	timer := time.AfterFunc(b.pingInterval, func() {
		if ws.WriteText("2") != nil {
			nc.Close()
			return
		}
		nc.SetReadDeadline(time.Now().Add(b.pingTimeout))
	})
	defer func() {
		pingMu.Lock()
		stopped = true
		timer.Stop()
		pingMu.Unlock()
	}()
	for {
		op, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if op != opText || len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case '3': // pong: next ping one interval from now
			nc.SetReadDeadline(time.Time{})
			pingMu.Lock()
			if !stopped {
				timer.Reset(b.pingInterval)
			}
			pingMu.Unlock()
		case '1': // Engine.IO close
			return
		case '4':
			if len(msg) > 1 && msg[1] == '1' { // Socket.IO DISCONNECT
				return
			}
			// 43<id>[...] acknowledgements and anything else: ignored.
		}
	}
}

// shutdown tells every socket to go away (closing + 1001), like the real
// server on SIGTERM.
func (b *baseline) shutdown() {
	if !b.closing.CompareAndSwap(false, true) {
		return
	}
	b.mu.RLock()
	agents := make([]*bAgent, 0, len(b.byID))
	for _, a := range b.byID {
		agents = append(agents, a)
	}
	b.mu.RUnlock()
	for _, a := range agents {
		a.mu.Lock()
		conns := append([]*WSConn(nil), a.conns...)
		head := a.nextEv
		a.mu.Unlock()
		msg := `42["closing",{"reason":"shutdown","resume_since":` + strconv.FormatInt(head, 10) + `}]`
		for _, c := range conns {
			c.WriteText(msg)
			c.CloseWith(1001, "server shutting down")
		}
	}
}
