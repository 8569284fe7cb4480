package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// wsfanout: the notifier's WebSocket fan-out benchmark. Many socket.io
// connections (agents × connections per agent) listen on GET /ws/agent; job
// creations (open model, fixed arrival rate) make the server push one
// onNewTask to every connection of the job's client and provider. Live mode
// measures delivery latency and loss; catch-up mode measures how fast a
// backlog is replayed to reconnecting clients (since=0).

// FanoutConfig holds the wsfanout flags.
type FanoutConfig struct {
	URL              string
	WSPath           string
	Mode             string
	Agents           int
	ConnsPerAgent    int
	Rate             float64
	Duration         time.Duration
	Warmup           time.Duration
	Drain            time.Duration
	ConnectRate      float64
	ConnectTimeout   time.Duration
	HandshakeTimeout time.Duration
	Backlog          int
	Settle           time.Duration
	CatchupTimeout   time.Duration
	Ack              bool
	HTTPConns        int
	MaxInFlight      int
	Timeout          time.Duration
	SetupConc        int
	ServerPID        int
	JSONPath         string
	Label            string
	CPUProfile       string
}

func cmdWSFanout(args []string) int {
	var cfg FanoutConfig
	fs := flag.NewFlagSet("wsfanout", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "", "server base URL, http://127.0.0.1:PORT (ws:// accepted; loopback only)")
	fs.StringVar(&cfg.WSPath, "ws-path", "/ws/agent/", "WebSocket path (the query EIO=4&transport=websocket is added)")
	fs.StringVar(&cfg.Mode, "mode", "live", "live | catchup")
	fs.IntVar(&cfg.Agents, "agents", 2000, "agents signed up (>= 2)")
	fs.IntVar(&cfg.ConnsPerAgent, "conns-per-agent", 5, "WebSocket connections per agent (total = agents x this)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "live: job creations per second (open model)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "live: measured schedule length")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "live: unmeasured schedule before the measured one")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "live: after the schedule, wait at most this long for the expected messages")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 2000, "connections opened per second (<= 0: as fast as possible)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 60*time.Second, "live: every connection must have its roomJoined this long after the last one was started")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "TCP connect + WebSocket upgrade + Engine.IO OPEN, per connection")
	fs.IntVar(&cfg.Backlog, "backlog", 20, "catchup: events per agent created before connecting (each job = 1 event for its client + 1 for its provider)")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "catchup: pause between creating the backlog and connecting")
	fs.DurationVar(&cfg.CatchupTimeout, "catchup-timeout", 90*time.Second, "catchup: give up on incomplete connections this long after the first connect")
	fs.BoolVar(&cfg.Ack, "ack", false, "acknowledge every event with 43<id>[true] (one extra frame per message)")
	fs.IntVar(&cfg.HTTPConns, "conns", 64, "HTTP keep-alive connections for signup and job creation")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 10000, "live: job creations in flight beyond which arrivals are dropped (counted)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per HTTP request timeout")
	fs.IntVar(&cfg.SetupConc, "setup-concurrency", 32, "concurrent requests for signup and the catch-up backlog")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "also report this (local) process's CPU use during the measurement")
	fs.StringVar(&cfg.JSONPath, "json", "", "also write the JSON result line to this file")
	fs.StringVar(&cfg.Label, "label", "", "free-form label stored in the report (e.g. baseline, agentlancer)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the generator's CPU profile here (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "wsfanout: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "wsfanout:", err)
		return exitUsage
	}
	f, err := newFanoutFor(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsfanout:", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.CPUProfile != "" {
		if pf, err := os.Create(cfg.CPUProfile); err == nil {
			pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	r, err := f.Run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsfanout: SETUP FAILED against %s: %v\n", cfg.URL, err)
		return exitSetup
	}
	PrintWSTable(os.Stdout, r)
	WriteJSON(os.Stdout, r)
	WriteJSONFile(cfg.JSONPath, "wsfanout", r)
	return exitOK
}

func (c *FanoutConfig) check() error {
	switch {
	case c.URL == "":
		return errors.New("-url is required")
	case c.Mode != "live" && c.Mode != "catchup":
		return fmt.Errorf("-mode %q: want live or catchup", c.Mode)
	case c.Agents < 2:
		return errors.New("-agents must be >= 2 (a job needs a client and a provider)")
	case c.ConnsPerAgent < 1:
		return errors.New("-conns-per-agent must be >= 1")
	case c.Mode == "live" && (c.Rate <= 0 || c.Duration <= 0):
		return errors.New("live: -rate > 0 and -duration > 0 are required")
	case c.Mode == "catchup" && c.Backlog < 1:
		return errors.New("catchup: -backlog must be >= 1")
	}
	if !strings.HasPrefix(c.WSPath, "/") {
		return errors.New("-ws-path must start with /")
	}
	return nil
}

// ---------------------------------------------------------------- state

type jobInfo struct {
	createdNs        int64 // when the 201 was read (ns since fanout.base)
	intendedNs       int64 // intended start of the creation (open-model schedule)
	client, provider int32
	warm             bool
}

// wsRec is one received event: its event_id, the job id for a phase-0
// onNewTask (-1 otherwise), the receipt time (ns since fanout.base) and a
// hash of the event name (one logged event may become several frames with
// the same event_id, e.g. onNewTask + onEvaluate).
type wsRec struct {
	ev, job, t int64
	name       uint32
}

// nameHash is FNV-1a over an event name.
func nameHash(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// countDuplicates sorts recs by (event_id, name) and counts repeats.
func countDuplicates(keys []wsRec) int64 {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ev != keys[j].ev {
			return keys[i].ev < keys[j].ev
		}
		return keys[i].name < keys[j].name
	})
	var n int64
	for i := 1; i < len(keys); i++ {
		if keys[i].ev == keys[i-1].ev && keys[i].name == keys[i-1].name {
			n++
		}
	}
	return n
}

const (
	stConnecting int32 = iota
	stJoined           // roomJoined received
	stFailed           // never joined (dial, handshake, refusal, timeout)
	stClosed           // joined, then closed during the run (by the server or an error)
)

type fanConn struct {
	idx, agent int
	ws         atomic.Pointer[WSConn]
	status     atomic.Int32
	joinOnce   sync.Once
	errMsg     atomic.Pointer[string] // why it never joined (first reason wins)
	endMsg     atomic.Pointer[string] // why it closed after joining
	refused    atomic.Bool            // CONNECT_ERROR received

	// Written by the connection's goroutine only; read after it ended (or,
	// for joinedNs/doneNs, after the join/done signal).
	dialNs, openNs, joinedNs, doneNs int64
	connected                        bool   // 40 received
	closeReason                      string // what the server said before closing (reader-private)
	head                             int64
	recs                             []wsRec
	lastEv                           int64
	lastName                         uint32
	outOfOrder                       int64
	beforeJoin                       int64
	otherEvents                      int64
	otherNames                       map[string]int64
	parseErrors                      int64
	firstParseError                  string
	eioPings                         int64
	backlogGot                       int
	ackBuf                           []byte
}

type fanout struct {
	cfg    *FanoutConfig
	api    *API
	newAPI func() *API // a fresh HTTP pool (nil: keep api)
	dialer *WSDialer
	path   string
	base   time.Time

	agents []Agent
	bodies [][]byte // job creation body per provider agent
	conns  []*fanConn
	open   []atomic.Int32 // joined-and-open connections per agent

	next     atomic.Uint64 // arrival counter (pairing)
	expected atomic.Int64  // measured phase-0 onNewTask messages expected so far
	received atomic.Int64  // measured phase-0 onNewTask messages received so far
	badIDs   atomic.Int64  // 2xx creations without a numeric id
	probe    []Agent       // two agents without sockets, for the probe creation

	jobs jobTable

	joined   sync.WaitGroup
	readers  sync.WaitGroup
	shutdown atomic.Bool

	// catch-up
	catchup      bool
	backlogWant  []int // per agent: backlog jobs it is part of
	doneCount    atomic.Int64
	failedCount  atomic.Int64
	progress     chan struct{} // poked when a connection completes or fails
	sinceConnect int64
}

// newFanoutFor checks the target URL and builds the HTTP and WebSocket
// clients for it.
func newFanoutFor(cfg *FanoutConfig) (*fanout, error) {
	raw := cfg.URL
	if strings.HasPrefix(raw, "ws://") {
		raw = "http://" + strings.TrimPrefix(raw, "ws://")
	}
	u, err := CheckLoopbackURL(raw)
	if err != nil {
		return nil, err
	}
	newAPI := func() *API {
		doer, _ := NewDoer("fast", u, cfg.HTTPConns, cfg.Timeout)
		return &API{Client: doer, Prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	f := newFanout(cfg, newAPI(), NewWSDialer(net.JoinHostPort(u.Hostname(), port), u.Host, cfg.HandshakeTimeout))
	f.newAPI = newAPI
	return f, nil
}

func newFanout(cfg *FanoutConfig, api *API, d *WSDialer) *fanout {
	f := &fanout{
		cfg: cfg, api: api, dialer: d,
		path:     cfg.WSPath + "?EIO=4&transport=websocket",
		progress: make(chan struct{}, 1),
	}
	f.jobs.init()
	return f
}

// jobTable maps job ids to what the generator knows about them. Readers
// classify each phase-0 onNewTask as it arrives (for the drain); a message
// may beat the 201 of its creation, so an entry can exist before the job is
// known: its early receipts are credited when the 201 is recorded.
type jobTable struct {
	shards [64]jobShard
}

type jobShard struct {
	mu sync.Mutex
	m  map[int64]*jobEntry
}

type jobEntry struct {
	info  jobInfo
	known bool  // the 201 was recorded
	early int64 // receipts before that
}

func (t *jobTable) init() {
	for i := range t.shards {
		t.shards[i].m = map[int64]*jobEntry{}
	}
}

func (t *jobTable) shard(id int64) *jobShard { return &t.shards[uint64(id)%uint64(len(t.shards))] }

// record stores a created job; it returns how many of its messages had
// already arrived.
func (t *jobTable) record(id int64, info jobInfo) int64 {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[id]; ok {
		e.info, e.known = info, true
		return e.early
	}
	s.m[id] = &jobEntry{info: info, known: true}
	return 0
}

// received classifies one receipt: whether the job is known and measured
// (not warm-up). Unknown jobs are remembered for a later record.
func (t *jobTable) received(id int64) (measured bool) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok {
		s.m[id] = &jobEntry{early: 1}
		return false
	}
	if !e.known {
		e.early++
		return false
	}
	return !e.info.warm
}

// get returns a recorded job (after the run, or for catch-up, whose jobs
// are all recorded before any socket opens).
func (t *jobTable) get(id int64) (jobInfo, bool) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok || !e.known {
		return jobInfo{}, false
	}
	return e.info, true
}

// each calls fn for every recorded job (no concurrent writers).
func (t *jobTable) each(fn func(jobInfo)) {
	for i := range t.shards {
		for _, e := range t.shards[i].m {
			if e.known {
				fn(e.info)
			}
		}
	}
}

func (f *fanout) now() int64 { return int64(time.Since(f.base)) }

// pairFor spreads job i over the agents: round r = i / A pairs agent
// (i mod A) as client with agent (i mod A + 1 + r mod) mod A as
// provider, so each round of A jobs gives every agent one job as client and
// one as provider, with a different partner each round.
func pairFor(i uint64, a int) (client, provider int) {
	n := uint64(a)
	c := i % n
	off := 1 + (i/n)%(n-1)
	return int(c), int((c + off) % n)
}

func (f *fanout) poke() {
	select {
	case f.progress <- struct{}{}:
	default:
	}
}

// ---------------------------------------------------------------- setup

// signupAll signs up n agents with conc concurrent requests.
func signupAll(ctx context.Context, api *API, n, conc int, prefix string) ([]Agent, error) {
	agents := make([]Agent, n)
	err := forEachIndex(ctx, n, conc, func(ctx context.Context, i int) error {
		a, err := api.Signup(ctx, fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			return fmt.Errorf("signup %d of %d: %v", i+1, n, err)
		}
		agents[i] = a
		return nil
	})
	return agents, err
}

func jobCreateBody(providerID string) []byte {
	b, _ := json.Marshal(map[string]string{
		"providerId":         providerID,
		"serviceRequirement": "bench",
		"budget":             "10",
		"tokenAddress":       "0x1111111111111111111111111111111111111111",
	})
	return b
}

func runTag() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (f *fanout) setupAgents(ctx context.Context) error {
	t0 := time.Now()
	agents, err := signupAll(ctx, f.api, f.cfg.Agents, f.cfg.SetupConc, "bench-ws-"+runTag())
	if err != nil {
		return err
	}
	f.agents = agents
	f.bodies = make([][]byte, len(agents))
	for i, a := range agents {
		f.bodies[i] = jobCreateBody(a.ID)
	}
	f.open = make([]atomic.Int32, len(agents))
	fmt.Fprintf(os.Stderr, "setup: %d agents signed up in %.1fs\n", len(agents), time.Since(t0).Seconds())
	return nil
}

// createJob performs one job creation for arrival i and records the job.
// It returns whether a job was created.
func (f *fanout) createJob(ctx context.Context, st *Step, intended time.Time, i uint64, warm bool) bool {
	c, p := pairFor(i, len(f.agents))
	return f.create(ctx, st, intended, c, p, f.agents[c].Key, f.bodies[p], warm)
}

func (f *fanout) create(ctx context.Context, st *Step, intended time.Time, c, p int, key string, body []byte, warm bool) bool {
	o, rb, _ := f.api.Timed(ctx, st, intended, "POST", "/api/agents/jobs", key, body, true)
	if o.Err != nil || !is2xx(o.Status) {
		return false
	}
	t := f.now()
	ids, ok := parseID(rb)
	id, err := strconv.ParseInt(ids, 10, 64)
	if !ok || err != nil {
		f.badIDs.Add(1)
		return false
	}
	if c < 0 { // probe: its agents have no sockets
		return true
	}
	early := f.jobs.record(id, jobInfo{createdNs: t, intendedNs: int64(intended.Sub(f.base)), client: int32(c), provider: int32(p), warm: warm})
	if !warm {
		f.expected.Add(int64(f.open[c].Load() + f.open[p].Load()))
		f.received.Add(early)
	}
	return true
}

// ---------------------------------------------------------------- connections

// connectAll opens agents × conns-per-agent connections at the connect rate
// (connection i belongs to agent i mod A). since < 0: live (no since).
func (f *fanout) connectAll(ctx context.Context, since int64) {
	n := f.cfg.Agents * f.cfg.ConnsPerAgent
	f.conns = make([]*fanConn, n)
	f.joined.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		if f.cfg.ConnectRate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) * 1e9 / f.cfg.ConnectRate))); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		c := &fanConn{idx: i, agent: i % f.cfg.Agents, head: -1, lastEv: -1}
		f.conns[i] = c
		if ctx.Err() != nil {
			c.setErr("not started: interrupted")
			f.markFailed(c)
			continue
		}
		f.readers.Add(1)
		go f.runConn(ctx, c, since)
	}
}

// waitJoined waits until every connection joined or failed, at most timeout.
// Stragglers are failed and closed. It returns false on timeout.
func (f *fanout) waitJoined(ctx context.Context, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { f.joined.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	for _, c := range f.conns {
		if c.status.Load() == stConnecting {
			f.failConn(c, fmt.Sprintf("no roomJoined within %s", timeout))
		}
	}
	<-done
	return false
}

func (f *fanout) markJoined(c *fanConn) {
	c.joinOnce.Do(func() {
		if c.status.CompareAndSwap(stConnecting, stJoined) {
			f.open[c.agent].Add(1)
		}
		f.joined.Done()
	})
}

func (f *fanout) markFailed(c *fanConn) {
	c.joinOnce.Do(func() {
		c.status.Store(stFailed)
		f.failedCount.Add(1)
		f.poke()
		f.joined.Done()
	})
}

// failConn fails a connection that has not joined yet (from another
// goroutine: only atomics and the socket are touched).
func (f *fanout) failConn(c *fanConn, why string) {
	c.setErr(why)
	c.joinOnce.Do(func() {
		c.status.Store(stFailed)
		f.failedCount.Add(1)
		f.poke()
		f.joined.Done()
		if ws := c.ws.Load(); ws != nil {
			ws.Close()
		}
	})
}

func (c *fanConn) setErr(msg string) { c.errMsg.CompareAndSwap(nil, &msg) }

func (c *fanConn) errString() string {
	if p := c.errMsg.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *fanConn) endString() string {
	if p := c.endMsg.Load(); p != nil {
		return *p
	}
	return ""
}

var errStopped = errors.New("stopped after a refusal or disconnect")

// runConn is the whole life of one connection.
func (f *fanout) runConn(ctx context.Context, c *fanConn, since int64) {
	defer f.readers.Done()
	c.dialNs = f.now()
	fail := func(msg string) {
		c.setErr(msg)
		f.markFailed(c)
	}
	ws, err := f.dialer.Dial(ctx, f.path)
	if err != nil {
		fail("connect: " + err.Error())
		return
	}
	c.ws.Store(ws)
	if c.status.Load() == stFailed { // timed out while dialling
		ws.Close()
		return
	}
	nc := ws.NetConn()
	nc.SetReadDeadline(time.Now().Add(f.cfg.HandshakeTimeout))
	op, msg, err := ws.ReadMessage()
	if err != nil {
		fail("waiting for Engine.IO OPEN: " + err.Error())
		ws.Close()
		return
	}
	if op != opText {
		fail("Engine.IO OPEN came as a binary frame")
		ws.Close()
		return
	}
	open, err := parseEIOOpen(msg)
	if err != nil {
		fail(err.Error())
		ws.Close()
		return
	}
	c.openNs = f.now()
	// Like socket.io-client: the connection is dead if no ping arrives
	// within pingInterval + pingTimeout.
	hb := time.Duration(open.PingInterval+open.PingTimeout) * time.Millisecond
	if hb <= 0 {
		hb = 45 * time.Second
	}
	nc.SetReadDeadline(time.Now().Add(hb))
	if err := ws.WriteText(sioConnectPacket(f.agents[c.agent].Key, since)); err != nil {
		fail("sending CONNECT: " + err.Error())
		ws.Close()
		return
	}
	for {
		op, msg, err := ws.ReadMessage()
		if err != nil {
			f.connEnded(c, err)
			return
		}
		if op != opText {
			c.parseErrors++
			if c.firstParseError == "" {
				c.firstParseError = "binary frame"
			}
			continue
		}
		if stop := f.handle(c, ws, msg, hb); stop {
			ws.Close()
			f.connEnded(c, errStopped)
			return
		}
	}
}

// connEnded records why the reader stopped.
func (f *fanout) connEnded(c *fanConn, err error) {
	if f.shutdown.Load() {
		if c.status.Load() == stConnecting {
			f.markFailed(c)
		}
		return
	}
	var why string
	var ce *CloseError
	switch {
	case errors.Is(err, errStopped):
		why = ""
	case errors.As(err, &ce):
		why = ce.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		why = "no Engine.IO ping within pingInterval+pingTimeout (read deadline)"
	default:
		why = err.Error()
	}
	if c.closeReason != "" {
		if why == "" {
			why = c.closeReason
		} else {
			why = c.closeReason + "; " + why
		}
	}
	switch c.status.Load() {
	case stConnecting:
		c.setErr("closed before roomJoined: " + why)
		f.markFailed(c)
	case stJoined:
		c.endMsg.Store(&why)
		if c.status.CompareAndSwap(stJoined, stClosed) {
			f.open[c.agent].Add(-1)
		}
		f.poke()
	}
	if ws := c.ws.Load(); ws != nil {
		ws.NetConn().Close()
	}
}

// handle processes one Engine.IO packet; it returns true when the
// connection must be closed (refusal, server disconnect).
func (f *fanout) handle(c *fanConn, ws *WSConn, msg []byte, hb time.Duration) bool {
	if len(msg) == 0 {
		c.parseError("empty Engine.IO packet")
		return false
	}
	switch msg[0] {
	case '2': // Engine.IO ping: answer with a pong
		c.eioPings++
		ws.NetConn().SetReadDeadline(time.Now().Add(hb))
		if err := ws.WriteText("3"); err != nil {
			c.closeReason = "writing pong: " + err.Error()
		}
		return false
	case '3', '6':
		return false
	case '1':
		c.closeReason = "Engine.IO CLOSE"
		return false // the server closes the socket next
	case '4':
	default:
		c.parseError(fmt.Sprintf("unknown Engine.IO packet %q", trimForErr(msg)))
		return false
	}
	if len(msg) < 2 {
		c.parseError("empty Socket.IO packet")
		return false
	}
	switch msg[1] {
	case '0':
		c.connected = true
		return false
	case '4':
		var e sioConnectError
		json.Unmarshal(msg[2:], &e)
		c.refused.Store(true)
		if c.status.Load() == stConnecting {
			if e.Message == "" {
				c.setErr("CONNECT refused: " + excerpt(msg))
			} else {
				c.setErr("CONNECT refused: " + e.String())
			}
			f.markFailed(c)
		} else {
			c.closeReason = "CONNECT_ERROR after joining: " + excerpt(msg)
		}
		return true
	case '1':
		c.closeReason = "Socket.IO DISCONNECT"
		return true
	case '3':
		return false
	case '2':
	default:
		c.parseError(fmt.Sprintf("unexpected Socket.IO packet %q", trimForErr(msg)))
		return false
	}
	t := f.now()
	ev, err := parseSIOEvent(msg)
	if err != nil {
		c.parseError(err.Error())
		return false
	}
	var info eventInfo
	if ev.Payload != nil && ev.Payload[0] == '{' {
		// With an ack id (= event_id) only the job's id and phase are needed.
		jobOnly := ev.AckID >= 0 && string(ev.Name) == "onNewTask"
		if info, err = scanEventPayloadUntil(ev.Payload, jobOnly); err != nil {
			c.parseError(fmt.Sprintf("event %s payload: %v", ev.Name, err))
			return false
		}
	} else {
		info = eventInfo{EventID: -1, JobID: -1, Phase: -1, HeadID: -1}
	}
	switch string(ev.Name) {
	case "roomJoined":
		c.joinedNs = t
		c.head = info.HeadID
		f.markJoined(c)
		if f.catchup {
			f.checkDone(c, t)
		}
		return false
	case "closing":
		c.closeReason = "closing " + excerpt(ev.Payload)
		return false
	}
	id := ev.AckID
	if id < 0 {
		id = info.EventID
	}
	if c.status.Load() == stConnecting {
		c.beforeJoin++
	}
	// Order: event_ids never go down on a connection. The same id again
	// is fine under another name (several frames of one event); under the
	// same name it is a duplicate (counted after the run).
	name := nameHash(ev.Name)
	fresh := true
	if id >= 0 {
		switch {
		case id < c.lastEv:
			c.outOfOrder++
			fresh = false
		case id == c.lastEv:
			fresh = false
		default:
			c.lastEv = id
		}
		c.lastName = name
	}
	job := int64(-1)
	if string(ev.Name) == "onNewTask" && info.Phase == 0 && info.JobID >= 0 {
		job = info.JobID
		if !f.catchup && f.jobs.received(job) {
			f.received.Add(1)
		}
	} else {
		c.otherEvents++
		if c.otherNames == nil {
			c.otherNames = map[string]int64{}
		}
		if len(c.otherNames) < 50 {
			c.otherNames[string(ev.Name)]++
		}
	}
	c.recs = append(c.recs, wsRec{ev: id, job: job, t: t, name: name})
	if f.cfg.Ack && ev.AckID >= 0 {
		c.ackBuf = sioAckPacket(c.ackBuf[:0], ev.AckID)
		ws.WriteMessage(opText, c.ackBuf)
	}
	if f.catchup && c.doneNs == 0 {
		if fresh && job >= 0 {
			if ji, ok := f.jobs.get(job); ok && (int(ji.client) == c.agent || int(ji.provider) == c.agent) {
				c.backlogGot++
			}
		}
		f.checkDone(c, t)
	}
	return false
}

func (c *fanConn) parseError(msg string) {
	c.parseErrors++
	if c.firstParseError == "" {
		c.firstParseError = msg
	}
}

// checkDone marks a catch-up connection complete once it has every backlog
// job event of its agent and everything up to the head announced in
// roomJoined.
func (f *fanout) checkDone(c *fanConn, t int64) {
	if c.doneNs != 0 || c.joinedNs == 0 {
		return
	}
	if c.backlogGot >= f.backlogWant[c.agent] && (c.head < 0 || c.lastEv >= c.head) {
		c.doneNs = t
		f.doneCount.Add(1)
		f.poke()
	}
}

func (f *fanout) closeAll() {
	f.shutdown.Store(true)
	for _, c := range f.conns {
		if c == nil {
			continue
		}
		if ws := c.ws.Load(); ws != nil {
			ws.Close()
		}
	}
	f.readers.Wait()
}

// ---------------------------------------------------------------- run

// Run performs the whole benchmark; an error means setup failed.
func (f *fanout) Run(ctx context.Context) (WSReport, error) {
	f.base = time.Now()
	if err := f.setupAgents(ctx); err != nil {
		return WSReport{}, err
	}
	if f.cfg.Mode == "catchup" {
		return f.runCatchup(ctx)
	}
	return f.runLive(ctx)
}

func (f *fanout) newReport() WSReport {
	cfg := f.cfg
	return WSReport{
		Label: cfg.Label, Scenario: "ws-" + cfg.Mode, Mode: cfg.Mode, Target: cfg.URL + cfg.WSPath,
		Agents: cfg.Agents, ConnsPerAgent: cfg.ConnsPerAgent, ConnsTarget: cfg.Agents * cfg.ConnsPerAgent,
		ConnectRate: cfg.ConnectRate, Ack: cfg.Ack, StartedAt: time.Now().UTC().Format(time.RFC3339),
		GoMaxProcs: goMaxProcs(), ServerPID: cfg.ServerPID,
	}
}

func (f *fanout) runLive(ctx context.Context) (WSReport, error) {
	cfg := f.cfg
	r := f.newReport()
	r.RateTarget, r.DurationS, r.WarmupS = cfg.Rate, cfg.Duration.Seconds(), cfg.Warmup.Seconds()
	r.MsgsPerCreateTarget = 2 * cfg.ConnsPerAgent
	r.MsgRateTarget = cfg.Rate * float64(r.MsgsPerCreateTarget)

	// One probe creation between two agents that never open a socket: fails
	// early and clearly when the API is not what we expect.
	pa, err := signupAll(ctx, f.api, 2, 2, "bench-ws-probe-"+runTag())
	if err != nil {
		return r, err
	}
	probe := NewStep("probe")
	if !f.create(ctx, probe, time.Now(), -1, -1, pa[0].Key, jobCreateBody(pa[1].ID), true) {
		if ff := probe.FirstFailure(); ff != "" {
			return r, fmt.Errorf("probe job creation failed: %s", ff)
		}
		return r, errors.New("probe job creation: 2xx without a numeric \"id\"")
	}

	t0 := time.Now()
	f.connectAll(ctx, -1)
	rampS := time.Since(t0).Seconds()
	f.waitJoined(ctx, cfg.ConnectTimeout)
	r.ConnectPhaseS = time.Since(t0).Seconds()
	r.ConnectRampS = rampS
	f.fillConnectStats(&r)
	if r.ConnsEstablished == 0 {
		f.closeAll()
		return r, fmt.Errorf("no connection reached roomJoined; first failure: %s", r.FirstConnFailure)
	}
	fmt.Fprintf(os.Stderr, "connected: %d of %d in %.1fs (%d failed)\n", r.ConnsEstablished, r.ConnsTarget, r.ConnectPhaseS, r.ConnsFailed)
	// The HTTP keep-alive connections idled through the connect phase; a
	// server may have closed them (agentlancer: http.read_timeout_ms), and
	// a POST is not retried on a stale connection. Start a fresh pool.
	if f.newAPI != nil {
		f.api = f.newAPI()
	}

	if cfg.Warmup > 0 && ctx.Err() == nil {
		ws := NewStep("create-warmup")
		s := &Scheduler{Rate: cfg.Rate, Duration: cfg.Warmup, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
		s.Run(ctx, func(ctx context.Context, intended time.Time) {
			f.createJob(ctx, ws, intended, f.next.Add(1), true)
		})
	}
	st := NewStep("create")
	s := &Scheduler{Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
	r.LoadAvgStart = LoadAvg()
	cpu0, srv0 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	wall0 := time.Now()
	res := s.Run(ctx, func(ctx context.Context, intended time.Time) {
		f.createJob(ctx, st, intended, f.next.Add(1), false)
	})
	// Drain: wait for the messages still on their way.
	drainStart := time.Now()
	deadline := drainStart.Add(cfg.Drain)
	for f.received.Load() < f.expected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	r.DrainS = time.Since(drainStart).Seconds()
	r.DrainTimedOut = f.received.Load() < f.expected.Load()
	cpu1, srv1 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	wall := time.Since(wall0)
	r.LoadAvgEnd = LoadAvg()
	r.Interrupted = res.Interrupted || ctx.Err() != nil
	f.closeAll()
	r.GenMaxRSSMB = maxRSSMB()

	r.GenCPUCores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	r.genCPU = cpu1 - cpu0
	if cfg.ServerPID > 0 && srv0 >= 0 && srv1 >= 0 {
		r.ServerCPUCores = (srv1 - srv0).Seconds() / wall.Seconds()
		r.serverCPU = srv1 - srv0
	}
	var lag Summary
	FillLatency(&lag, res.LagNs)
	r.GenLagP99ms = lag.P99ms
	r.Scheduled, r.Dropped = res.Scheduled, res.Dropped
	r.Create = Summarize("create", res.Elapsed(cfg.Duration), res.Dropped, st)
	r.JobsCreated = r.Create.OK
	r.CreateErrors = r.Create.Non2xx + r.Create.Errors
	r.CreatesPerSec = float64(r.JobsCreated) / cfg.Duration.Seconds()
	r.BadJobIDs = f.badIDs.Load()
	f.analyzeLive(&r, res.Start)
	f.fillConnectStats(&r) // again: disconnects during the run
	return r, nil
}

// fillConnectStats counts connection outcomes and connect latencies.
func (f *fanout) fillConnectStats(r *WSReport) {
	r.ConnsEstablished, r.ConnsFailed, r.ConnsRefused, r.ConnsClosedDuringRun = 0, 0, 0, 0
	r.FirstConnFailure, r.FirstCloseReason = "", ""
	var joinLat []int64
	for _, c := range f.conns {
		switch c.status.Load() {
		case stJoined, stClosed:
			r.ConnsEstablished++
			if c.status.Load() == stClosed {
				r.ConnsClosedDuringRun++
				if r.FirstCloseReason == "" {
					r.FirstCloseReason = c.endString()
				}
			}
			if c.joinedNs > 0 {
				joinLat = append(joinLat, c.joinedNs-c.dialNs)
			}
		case stFailed:
			r.ConnsFailed++
			if c.refused.Load() {
				r.ConnsRefused++
			}
			if r.FirstConnFailure == "" {
				r.FirstConnFailure = c.errString()
				if r.FirstConnFailure == "" {
					r.FirstConnFailure = "gave up (no roomJoined in time)"
				}
			}
		}
	}
	var s Summary
	FillLatency(&s, joinLat)
	r.ConnectP50ms, r.ConnectP99ms, r.ConnectMaxms = s.P50ms, s.P99ms, s.Maxms
}

type jobLat struct{ job, lat, e2e int64 }

// analyzeLive compares what every connection received with the jobs created.
func (f *fanout) analyzeLive(r *WSReport, measStart time.Time) {
	ms := int64(measStart.Sub(f.base))
	me := ms + int64(f.cfg.Duration)
	want := make([]int64, len(f.agents)) // measured jobs per agent
	f.jobs.each(func(ji jobInfo) {
		if !ji.warm {
			want[ji.client]++
			want[ji.provider]++
		}
	})
	var lats, e2e []int64
	var first, last int64 = -1, 0
	nsec := int(f.cfg.Duration/time.Second) + 1
	series := make([]int64, nsec)
	var tmp []jobLat
	var evs []wsRec
	for _, c := range f.conns {
		st := c.status.Load()
		r.ParseErrors += c.parseErrors
		if r.FirstParseError == "" {
			r.FirstParseError = c.firstParseError
		}
		r.EIOPings += c.eioPings
		if ws := c.ws.Load(); ws != nil {
			r.WSPings += ws.Pings
			r.WSFragments += ws.Fragmented
		}
		if st != stJoined && st != stClosed {
			r.UnexpectedMsgs += int64(len(c.recs))
			continue
		}
		r.OutOfOrder += c.outOfOrder
		r.addOther(c)
		r.BeforeJoin += c.beforeJoin
		r.FramesReceived += int64(len(c.recs))
		tmp = tmp[:0]
		evs = evs[:0]
		for _, rec := range c.recs {
			if rec.t >= ms && rec.t < me {
				r.InWindowMsgs++
				if k := int((rec.t - ms) / int64(time.Second)); k < nsec {
					series[k]++
				}
			}
			if rec.ev >= 0 {
				evs = append(evs, rec)
			}
			if rec.job < 0 {
				continue
			}
			ji, ok := f.jobs.get(rec.job)
			if !ok {
				r.UnexpectedMsgs++ // a job this run did not get a 2xx for
				continue
			}
			if int(ji.client) != c.agent && int(ji.provider) != c.agent {
				r.Misrouted++
				continue
			}
			if ji.warm {
				continue
			}
			tmp = append(tmp, jobLat{rec.job, rec.t - ji.createdNs, rec.t - ji.intendedNs})
			if rec.t > last {
				last = rec.t
			}
			if first < 0 || rec.t < first {
				first = rec.t
			}
		}
		r.Duplicates += countDuplicates(evs)
		sort.SliceStable(tmp, func(i, j int) bool { return tmp[i].job < tmp[j].job })
		distinct := int64(0)
		for i, jl := range tmp {
			if i > 0 && jl.job == tmp[i-1].job {
				r.DuplicateJobs++
				continue
			}
			distinct++
			lat := jl.lat
			if lat < 0 {
				r.NegativeClamped++
				lat = 0
			}
			lats = append(lats, lat)
			e2e = append(e2e, jl.e2e)
		}
		r.Expected += want[c.agent]
		r.Delivered += distinct
		lost := want[c.agent] - distinct
		r.Lost += lost
		if st == stClosed {
			r.LostOnClosedConns += lost
		}
	}
	FillLatency(&r.Latency, lats)
	r.Latency.Name = "delivery"
	r.Latency.Count = int64(len(lats))
	FillLatency(&r.LatencyFromRequest, e2e)
	r.LatencyFromRequest.Name = "create intended start -> delivery"
	r.LatencyFromRequest.Count = int64(len(e2e))
	// The messages of a D-second schedule arrive over about D seconds,
	// shifted by the latency: rate over first -> last measured delivery
	// (never less than half the schedule, so a handful of messages cannot
	// make a huge rate).
	window := time.Duration(last - first)
	if first < 0 || window < f.cfg.Duration/2 {
		window = f.cfg.Duration
	}
	r.WindowS = window.Seconds()
	r.DeliveredPerSec = float64(r.Delivered) / window.Seconds()
	r.InWindowPerSec = float64(r.InWindowMsgs) / f.cfg.Duration.Seconds()
	r.PerSecondSeries = series[:len(series)-1]
	if f.cfg.Duration%time.Second != 0 {
		r.PerSecondSeries = series
	}
	if r.Delivered > 0 && r.serverCPU > 0 {
		r.ServerUsPerMsg = r.serverCPU.Seconds() * 1e6 / float64(r.Delivered)
	}
	if r.Delivered > 0 {
		r.GenUsPerMsg = r.genCPU.Seconds() * 1e6 / float64(r.Delivered)
	}
}

// ---------------------------------------------------------------- catch-up

func (f *fanout) runCatchup(ctx context.Context) (WSReport, error) {
	cfg := f.cfg
	r := f.newReport()
	f.catchup = true
	a := len(f.agents)
	rounds := (cfg.Backlog + 1) / 2
	n := rounds * a
	r.BacklogPerAgent = 2 * rounds
	// The backlog: n jobs, untimed, setup-concurrency at a time.
	t0 := time.Now()
	st := NewStep("backlog")
	var next atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < max(1, cfg.SetupConc); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= uint64(n) || ctx.Err() != nil {
					return
				}
				f.createJob(ctx, st, time.Now(), i, false)
			}
		}()
	}
	wg.Wait()
	cr := Summarize("backlog", time.Since(t0), 0, st)
	r.Create = cr
	r.JobsCreated = cr.OK
	r.CreateErrors = cr.Non2xx + cr.Errors
	r.CreatesPerSec = float64(cr.OK) / time.Since(t0).Seconds()
	r.BadJobIDs = f.badIDs.Load()
	if r.JobsCreated == 0 {
		return r, fmt.Errorf("no backlog job could be created: %s", cr.FirstFailure)
	}
	f.backlogWant = make([]int, a)
	f.jobs.each(func(ji jobInfo) {
		f.backlogWant[ji.client]++
		f.backlogWant[ji.provider]++
	})
	fmt.Fprintf(os.Stderr, "setup: %d backlog jobs created in %.1fs (%.0f/s, %d failed); settling %s\n",
		r.JobsCreated, time.Since(t0).Seconds(), r.CreatesPerSec, r.CreateErrors, cfg.Settle)
	if cfg.Settle > 0 {
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
		}
	}

	total := int64(a * cfg.ConnsPerAgent)
	r.LoadAvgStart = LoadAvg()
	cpu0, srv0 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	start := time.Now()
	startNs := f.now()
	f.connectAll(ctx, 0)
	r.ConnectRampS = time.Since(start).Seconds()
	deadline := start.Add(cfg.CatchupTimeout)
	for f.doneCount.Load()+f.failedCount.Load() < total && ctx.Err() == nil {
		d := time.Until(deadline)
		if d <= 0 {
			break
		}
		select {
		case <-f.progress:
		case <-time.After(min(d, 50*time.Millisecond)):
		case <-ctx.Done():
		}
	}
	r.DrainTimedOut = f.doneCount.Load()+f.failedCount.Load() < total
	cpu1, srv1 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	wall := time.Since(start)
	r.LoadAvgEnd = LoadAvg()
	r.Interrupted = ctx.Err() != nil
	f.closeAll()
	r.GenMaxRSSMB = maxRSSMB()
	f.fillConnectStats(&r)
	r.ConnectPhaseS = r.ConnectRampS
	r.GenCPUCores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	r.genCPU = cpu1 - cpu0
	if cfg.ServerPID > 0 && srv0 >= 0 && srv1 >= 0 {
		r.ServerCPUCores = (srv1 - srv0).Seconds() / wall.Seconds()
		r.serverCPU = srv1 - srv0
	}
	f.analyzeCatchup(&r, startNs)
	return r, nil
}

func (f *fanout) analyzeCatchup(r *WSReport, startNs int64) {
	var joinToDone, dialToDone []int64
	var lastDone, lastJoin int64
	var evs []wsRec
	var jobs []int64
	for _, c := range f.conns {
		st := c.status.Load()
		r.ParseErrors += c.parseErrors
		if r.FirstParseError == "" {
			r.FirstParseError = c.firstParseError
		}
		if ws := c.ws.Load(); ws != nil {
			r.WSPings += ws.Pings
			r.WSFragments += ws.Fragmented
		}
		r.EIOPings += c.eioPings
		if st != stJoined && st != stClosed {
			continue
		}
		if c.joinedNs > lastJoin {
			lastJoin = c.joinedNs
		}
		r.FramesReceived += int64(len(c.recs))
		r.OutOfOrder += c.outOfOrder
		r.addOther(c)
		r.BeforeJoin += c.beforeJoin
		want := int64(f.backlogWant[c.agent])
		r.Expected += want
		evs, jobs = evs[:0], jobs[:0]
		for _, rec := range c.recs {
			if rec.ev >= 0 {
				evs = append(evs, rec)
			}
			if rec.job < 0 {
				continue
			}
			ji, ok := f.jobs.get(rec.job)
			if !ok {
				r.UnexpectedMsgs++
				continue
			}
			if int(ji.client) != c.agent && int(ji.provider) != c.agent {
				r.Misrouted++
				continue
			}
			jobs = append(jobs, rec.job)
		}
		r.Duplicates += countDuplicates(evs)
		sort.Slice(jobs, func(i, j int) bool { return jobs[i] < jobs[j] })
		distinct := int64(0)
		for i := range jobs {
			if i > 0 && jobs[i] == jobs[i-1] {
				r.DuplicateJobs++
				continue
			}
			distinct++
		}
		r.Delivered += distinct
		r.Lost += want - distinct
		if st == stClosed {
			r.LostOnClosedConns += want - distinct
		}
		if c.doneNs > 0 {
			r.ConnsComplete++
			joinToDone = append(joinToDone, c.doneNs-c.joinedNs)
			dialToDone = append(dialToDone, c.doneNs-c.dialNs)
			if c.doneNs > lastDone {
				lastDone = c.doneNs
			}
		} else {
			r.ConnsIncomplete++
		}
	}
	FillLatency(&r.Latency, joinToDone)
	r.Latency.Name = "roomJoined->complete"
	r.Latency.Count = int64(len(joinToDone))
	var d Summary
	FillLatency(&d, dialToDone)
	r.DialToCompleteP50ms, r.DialToCompleteP99ms, r.DialToCompleteMaxms = d.P50ms, d.P99ms, d.Maxms
	if lastDone > 0 {
		r.CatchupS = float64(lastDone-startNs) / 1e9
		r.WindowS = r.CatchupS
		r.DeliveredPerSec = float64(r.FramesReceived) / r.CatchupS
		if lastDone > lastJoin {
			r.TailAfterLastJoinS = float64(lastDone-lastJoin) / 1e9
		}
	}
	if r.FramesReceived > 0 && r.serverCPU > 0 {
		r.ServerUsPerMsg = r.serverCPU.Seconds() * 1e6 / float64(r.FramesReceived)
	}
	if r.FramesReceived > 0 {
		r.GenUsPerMsg = r.genCPU.Seconds() * 1e6 / float64(r.FramesReceived)
	}
}

// ProcCPU returns the user+system CPU time of process pid from
// /proc/PID/stat (-1 if unknown or pid <= 0).
func ProcCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may contain spaces: parse after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	stt, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+stt) * time.Second / clkTck
}
