package main

// webhooks: the same events delivered two ways in one run. Every agent has
// one socket.io connection (GET /ws/agent, live) and one webhook endpoint
// (POST /api/agent/webhooks) pointing at a receiver this process runs on
// 127.0.0.1, which verifies each signature (Standard Webhooks) and answers
// 204. Thread messages (open model, fixed rate) each log one
// thread.message_posted for the thread's two members; for every event the
// arrival on the socket and at the receiver are timed from the moment the
// write's 201 was read. socket.io is the in-run baseline; a plain signed
// POST loadgen -> its own receiver is the floor of the HTTP hop.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// whMaxDuration bounds the measured schedule (a benchmark, not a soak).
const whMaxDuration = 30 * time.Second

// whMaxMessagesPerThread stays under threads.max_messages (1,000 by default).
const whMaxMessagesPerThread = 900

// WHConfig holds the flags of `loadgen webhooks`.
type WHConfig struct {
	URL           string
	WSPath        string
	Agents        int
	Rate          float64
	Duration      time.Duration
	Warmup        time.Duration
	Drain         time.Duration
	FloorRate     float64
	FloorDuration time.Duration
	FloorModes    string
	HTTPConns     int
	MaxInFlight   int
	Timeout       time.Duration
	SetupConc     int
	Settle        time.Duration
	ServerPID     int
	JSONPath      string
	Label         string
	ServerNote    string
}

func cmdWebhooks(args []string) int {
	var cfg WHConfig
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "", "server base URL, http://127.0.0.1:PORT (loopback only)")
	fs.StringVar(&cfg.WSPath, "ws-path", "/ws/agent/", "socket.io WebSocket path (the query EIO=4&transport=websocket is added)")
	fs.IntVar(&cfg.Agents, "agents", 20, "agents (2..500), each with one socket and one webhook endpoint; agent i opens a thread on agent i+1's service")
	fs.Float64Var(&cfg.Rate, "rate", 50, "thread messages per second (open model); each is one event for 2 agents")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured schedule (at most 30s)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured schedule before the measured one")
	fs.DurationVar(&cfg.Drain, "drain", 10*time.Second, "after the schedule, wait at most this long for missing deliveries")
	fs.Float64Var(&cfg.FloorRate, "floor-rate", 0, "floor POSTs per second (0: the webhook delivery rate, 2 x -rate)")
	fs.DurationVar(&cfg.FloorDuration, "floor-duration", 5*time.Second, "length of each floor measurement (0: no floor)")
	fs.StringVar(&cfg.FloorModes, "floor", "new-conn,keep-alive", "floor measurements, comma-separated: new-conn (a TCP connection per POST, as the server delivers) and/or keep-alive")
	fs.IntVar(&cfg.HTTPConns, "conns", 64, "HTTP keep-alive connections for the API calls")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 10000, "writes in flight beyond which arrivals are dropped (counted)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per HTTP request timeout")
	fs.IntVar(&cfg.SetupConc, "setup-concurrency", 8, "concurrent requests of the (untimed) setup")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "after the setup writes, wait until /metrics shows the server quiet this long (0: do not wait)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "also report this (local) process's CPU use during the measurement")
	fs.StringVar(&cfg.JSONPath, "json", "", "also write the JSON result line to this file")
	fs.StringVar(&cfg.Label, "label", "", "free-form label stored in the report")
	fs.StringVar(&cfg.ServerNote, "server-note", "", "free-form note on the server (build, options) stored in the report")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "webhooks: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		return exitUsage
	}
	b, err := newWHBench(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := b.Run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "webhooks: SETUP FAILED against %s: %v\n", cfg.URL, err)
		return exitSetup
	}
	PrintWHTable(os.Stdout, r)
	WriteJSON(os.Stdout, r)
	WriteJSONFile(cfg.JSONPath, "webhooks", r)
	return exitOK
}

func (c *WHConfig) check() error {
	switch {
	case c.URL == "":
		return errors.New("-url is required")
	case c.Agents < 2 || c.Agents > 500:
		return errors.New("-agents must be 2..500")
	case c.Rate <= 0 || c.Duration <= 0:
		return errors.New("-rate > 0 and -duration > 0 are required")
	case c.Duration > whMaxDuration:
		return fmt.Errorf("-duration %s: at most %s", c.Duration, whMaxDuration)
	case c.Warmup < 0 || c.Warmup > 10*time.Second:
		return errors.New("-warmup must be 0..10s")
	case c.FloorDuration < 0 || c.FloorDuration > 10*time.Second:
		return errors.New("-floor-duration must be 0..10s")
	case !strings.HasPrefix(c.WSPath, "/"):
		return errors.New("-ws-path must start with /")
	}
	for _, m := range c.floorModes() {
		if m != "new-conn" && m != "keep-alive" {
			return fmt.Errorf("-floor %q: want new-conn and/or keep-alive", m)
		}
	}
	perThread := c.Rate*(c.Warmup+c.Duration).Seconds()/float64(c.Agents) + 2
	if perThread > whMaxMessagesPerThread {
		return fmt.Errorf("%.0f messages per thread asked (rate x (warmup + duration) / agents); threads hold at most %d here (threads.max_messages): raise -agents or lower -rate",
			perThread, whMaxMessagesPerThread)
	}
	return nil
}

func (c *WHConfig) floorModes() []string {
	var out []string
	for _, m := range strings.Split(c.FloorModes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// ---------------------------------------------------------------- state

type agentMsg struct {
	agent int32
	msg   string
}

type whSock struct {
	agent   int
	ws      atomic.Pointer[WSConn]
	joined  atomic.Bool
	closed  atomic.Bool
	endMsg  atomic.Pointer[string]
	joinErr chan error // the first of roomJoined (nil) or a failure
	once    sync.Once
}

func (s *whSock) join(err error) { s.once.Do(func() { s.joinErr <- err }) }

type whBench struct {
	cfg    *WHConfig
	api    *API
	newAPI func() *API
	dialer *WSDialer
	path   string
	base   time.Time

	agents   []Agent
	threads  []string // thread i's messages path: agent i is its requester, agent i+1 its provider
	hookIDs  []string // agent i's endpoint
	rv       *whReceiver
	rvAddr   string
	socks    []*whSock
	msgBody  []byte
	shutdown atomic.Bool

	mu     sync.Mutex
	writes []whWrite
	pend   []int // measured writes not yet seen on both channels by both agents
	arr    [2][]whArrival
	got    [2]map[agentMsg]struct{}

	next atomic.Uint64
	noID atomic.Int64
}

func newWHBench(cfg *WHConfig) (*whBench, error) {
	u, err := CheckLoopbackURL(cfg.URL)
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
	b := &whBench{cfg: cfg, api: newAPI(), newAPI: newAPI,
		dialer:  NewWSDialer(net.JoinHostPort(u.Hostname(), port), u.Host, 10*time.Second),
		path:    cfg.WSPath + "?EIO=4&transport=websocket",
		msgBody: mustJSON(map[string]string{"type": "text", "body": "bench: a message for the webhook benchmark"}),
	}
	b.got[chSocket] = map[agentMsg]struct{}{}
	b.got[chWebhook] = map[agentMsg]struct{}{}
	return b, nil
}

func (b *whBench) now() int64 { return int64(time.Since(b.base)) }

func (b *whBench) record(c int, a whArrival) {
	b.mu.Lock()
	b.arr[c] = append(b.arr[c], a)
	if a.typ == typeMessagePosted && a.msgID != "" {
		b.got[c][agentMsg{a.agent, a.msgID}] = struct{}{}
	}
	b.mu.Unlock()
}

// missing counts the deliveries still due for the pending measured writes
// (and forgets the writes that are complete).
func (b *whBench) missing() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	keep := b.pend[:0]
	for _, i := range b.pend {
		w := &b.writes[i]
		m := 0
		for c := range b.got {
			for _, agent := range [2]int32{w.a, w.b} {
				if _, ok := b.got[c][agentMsg{agent, w.msgID}]; !ok {
					m++
				}
			}
		}
		if m > 0 {
			keep = append(keep, i)
			n += m
		}
	}
	b.pend = keep
	return n
}

// has reports whether msgID reached agent on channel c.
func (b *whBench) has(c int, agent int32, msgID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.got[c][agentMsg{agent, msgID}]
	return ok
}

// write posts one message on thread k (as its requester) and records it.
// It returns the message id ("" when the write failed).
func (b *whBench) write(ctx context.Context, st *Step, intended time.Time, k int, warm bool) string {
	o, rb, _ := b.api.Timed(ctx, st, intended, "POST", b.threads[k], b.agents[k].Key, b.msgBody, true)
	if o.Err != nil || !is2xx(o.Status) {
		return ""
	}
	t := b.now()
	var resp struct {
		Message struct {
			ID string `json:"id"`
		} `json:"message"`
	}
	if json.Unmarshal(rb, &resp) != nil || resp.Message.ID == "" {
		b.noID.Add(1)
		return ""
	}
	b.mu.Lock()
	b.writes = append(b.writes, whWrite{msgID: resp.Message.ID, respNs: t, intendedNs: int64(intended.Sub(b.base)),
		a: int32(k), b: int32((k + 1) % len(b.agents)), warm: warm})
	if !warm {
		b.pend = append(b.pend, len(b.writes)-1)
	}
	b.mu.Unlock()
	return resp.Message.ID
}

// ---------------------------------------------------------------- setup

func (b *whBench) setup(ctx context.Context) error {
	cfg := b.cfg
	n := cfg.Agents
	t0 := time.Now()
	agents, err := signupAll(ctx, b.api, n, cfg.SetupConc, "bench-wh-"+runTag())
	if err != nil {
		return err
	}
	b.agents = agents
	services := make([]string, n)
	if err := forEachIndex(ctx, n, cfg.SetupConc, func(ctx context.Context, i int) error {
		id, err := b.api.publishService(ctx, agents[i], i)
		if err != nil {
			return fmt.Errorf("service of agent %d: %v", i, err)
		}
		services[i] = id
		return nil
	}); err != nil {
		return err
	}
	b.threads = make([]string, n)
	if err := forEachIndex(ctx, n, cfg.SetupConc, func(ctx context.Context, i int) error {
		id, err := b.api.SetupCreate(ctx, "POST", threadsPath, agents[i].Key, openBody(services[(i+1)%n]))
		if err != nil {
			return fmt.Errorf("thread of agent %d: %v", i, err)
		}
		b.threads[i] = threadsPath + "/" + id + "/messages"
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "setup: %d agents, %d services, %d threads in %.1fs\n", n, n, n, time.Since(t0).Seconds())
	if cfg.Settle > 0 {
		took, err := settle(ctx, http.DefaultClient, cfg.URL, cfg.Settle, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("server did not settle after setup: %v", err)
		}
		fmt.Fprintf(os.Stderr, "setup: settled in %.1fs\n", took.Seconds())
	}

	// One live socket per agent (no since: only events from now on).
	b.socks = make([]*whSock, n)
	for i := range b.socks {
		s := &whSock{agent: i, joinErr: make(chan error, 1)}
		b.socks[i] = s
		go b.runSocket(ctx, s)
	}
	deadline := time.After(30 * time.Second)
	for _, s := range b.socks {
		select {
		case err := <-s.joinErr:
			if err != nil {
				return fmt.Errorf("socket of agent %d: %v", s.agent, err)
			}
		case <-deadline:
			return fmt.Errorf("socket of agent %d: no roomJoined within 30s", s.agent)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// One webhook endpoint per agent, at the receiver.
	b.rv = newWHReceiver(n, b.now, func(a whArrival) { b.record(chWebhook, a) })
	if b.rvAddr, err = b.rv.start(); err != nil {
		return fmt.Errorf("receiver: %v", err)
	}
	b.hookIDs = make([]string, n)
	if err := forEachIndex(ctx, n, cfg.SetupConc, func(ctx context.Context, i int) error {
		body := mustJSON(map[string]any{
			"url":         fmt.Sprintf("http://%s/hooks/%d", b.rvAddr, i),
			"event_types": []string{typeMessagePosted},
			"description": "loadgen webhooks benchmark",
		})
		rb, err := b.api.SetupCall(ctx, "POST", "/api/agent/webhooks", agents[i].Key, body)
		if err != nil {
			return fmt.Errorf("webhook of agent %d: %v", i, err)
		}
		var ep struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}
		if json.Unmarshal(rb, &ep) != nil || ep.ID == "" {
			return fmt.Errorf("webhook of agent %d: 2xx without id: %s", i, excerpt(rb))
		}
		key, err := decodeWebhookSecret(ep.Secret)
		if err != nil {
			return fmt.Errorf("webhook of agent %d: %v: %s", i, err, excerpt(rb))
		}
		b.hookIDs[i] = ep.ID
		b.rv.setSecret(i, key)
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "setup: %d sockets joined, %d webhook endpoints registered (receiver %s)\n", n, n, b.rvAddr)

	// Probe: one message must reach both members on both channels.
	probe := NewStep("probe")
	msg := b.write(ctx, probe, time.Now(), 0, true)
	if msg == "" {
		if ff := probe.FirstFailure(); ff != "" {
			return fmt.Errorf("probe message: %s", ff)
		}
		return errors.New("probe message: 2xx without message.id")
	}
	until := time.Now().Add(30 * time.Second)
	for time.Now().Before(until) && ctx.Err() == nil {
		if b.has(chSocket, 0, msg) && b.has(chSocket, 1, msg) && b.has(chWebhook, 0, msg) && b.has(chWebhook, 1, msg) {
			fmt.Fprintf(os.Stderr, "setup: probe message delivered on both channels\n")
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	why := fmt.Sprintf("socket.io agents 0/1: %v/%v, webhook agents 0/1: %v/%v",
		b.has(chSocket, 0, msg), b.has(chSocket, 1, msg), b.has(chWebhook, 0, msg), b.has(chWebhook, 1, msg))
	if p := b.rv.firstBad.Load(); p != nil {
		why += "; receiver refused: " + *p
	}
	if rb, err := b.api.SetupCall(ctx, "GET", "/api/agent/webhooks/"+b.hookIDs[0]+"/deliveries?limit=3", agents[0].Key, nil); err == nil {
		why += "; agent 0's deliveries log: " + excerpt(rb)
	}
	return fmt.Errorf("probe message not delivered on both channels within 30s (%s)", why)
}

// runSocket is the life of one agent's socket.io connection.
func (b *whBench) runSocket(ctx context.Context, s *whSock) {
	ws, err := b.dialer.Dial(ctx, b.path)
	if err != nil {
		s.join(fmt.Errorf("connect: %v", err))
		return
	}
	s.ws.Store(ws)
	defer ws.Close()
	nc := ws.NetConn()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	op, msg, err := ws.ReadMessage()
	if err != nil || op != opText {
		s.join(fmt.Errorf("waiting for Engine.IO OPEN: %v", err))
		return
	}
	open, err := parseEIOOpen(msg)
	if err != nil {
		s.join(err)
		return
	}
	hb := time.Duration(open.PingInterval+open.PingTimeout) * time.Millisecond
	if hb <= 0 {
		hb = 45 * time.Second
	}
	nc.SetReadDeadline(time.Now().Add(hb))
	if err := ws.WriteText(sioConnectPacket(b.agents[s.agent].Key, -1)); err != nil {
		s.join(fmt.Errorf("sending CONNECT: %v", err))
		return
	}
	end := func(why string) {
		s.join(errors.New(why))
		if s.joined.Load() && !b.shutdown.Load() && s.closed.CompareAndSwap(false, true) {
			s.endMsg.Store(&why)
		}
	}
	for {
		op, msg, err := ws.ReadMessage()
		if err != nil {
			end("read: " + err.Error())
			return
		}
		if op != opText || len(msg) == 0 {
			continue
		}
		t := b.now()
		switch msg[0] {
		case '2':
			nc.SetReadDeadline(time.Now().Add(hb))
			ws.WriteText("3")
			continue
		case '4':
		default:
			continue
		}
		if len(msg) < 2 {
			continue
		}
		switch msg[1] {
		case '4':
			end("CONNECT refused: " + excerpt(msg))
			return
		case '1':
			end("Socket.IO DISCONNECT")
			return
		case '2':
		default:
			continue
		}
		ev, err := parseSIOEvent(msg)
		if err != nil {
			continue
		}
		switch string(ev.Name) {
		case "roomJoined":
			s.joined.Store(true)
			s.join(nil)
			continue
		case "closing":
			continue
		}
		a := whArrival{agent: int32(s.agent), typ: string(ev.Name), eventID: ev.AckID, t: t}
		if len(ev.Payload) > 0 && ev.Payload[0] == '{' {
			if row, err := parseEventRow(ev.Payload); err == nil {
				a.ceid, a.msgID = row.CloudEventID, row.Data.Message.ID
				if a.eventID < 0 {
					a.eventID = row.EventID
				}
			}
		}
		b.record(chSocket, a)
	}
}

// ---------------------------------------------------------------- floor

// floorBody is a signed-POST body of about n bytes (the size of a webhook body).
func floorBody(n int) []byte {
	b := mustJSON(map[string]any{"event_id": 1, "type": typeMessagePosted, "cloudevent_id": "00000000-0000-4000-8000-000000000000", "data": map[string]string{"pad": ""}})
	if pad := n - len(b); pad > 0 {
		b = mustJSON(map[string]any{"event_id": 1, "type": typeMessagePosted, "cloudevent_id": "00000000-0000-4000-8000-000000000000", "data": map[string]string{"pad": strings.Repeat("x", pad)}})
	}
	return b
}

func floorClient(mode string, timeout time.Duration) *http.Client {
	c := NewClient(256, timeout)
	if mode == "new-conn" {
		c.Transport.(*http.Transport).DisableKeepAlives = true
	}
	return c
}

// runFloor POSTs signed bodies to the receiver's /floor at rate for d.
func (b *whBench) runFloor(ctx context.Context, mode string, rate float64, d time.Duration, body []byte) WHFloor {
	key := make([]byte, 24)
	rand.Read(key)
	b.rv.mu.Lock()
	b.rv.floorKy = key
	b.rv.mu.Unlock()
	client := floorClient(mode, b.cfg.Timeout)
	defer client.CloseIdleConnections()
	url := "http://" + b.rvAddr + "/floor"
	st := NewStep("floor " + mode)
	var n atomic.Int64
	s := &Scheduler{Rate: rate, Duration: d, MaxInFlight: b.cfg.MaxInFlight, Drain: b.cfg.Drain}
	res := s.Run(ctx, func(ctx context.Context, intended time.Time) {
		id := "floor-" + strconv.FormatInt(n.Add(1), 10)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+signWebhook(key, id, ts, body))
		resp, err := client.Do(req)
		if err != nil {
			st.Add(Outcome{Err: err, Detail: "POST /floor"})
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o := Outcome{Latency: time.Since(intended), Status: resp.StatusCode}
		if !is2xx(resp.StatusCode) {
			o.Detail = "POST /floor: " + resp.Status
		}
		st.Add(o)
	})
	sum := Summarize("floor "+mode, res.Elapsed(d), res.Dropped, st)
	label := map[string]string{"new-conn": "new connection", "keep-alive": "keep-alive"}[mode]
	return WHFloor{Mode: label, Rate: rate, DurationS: d.Seconds(), BodyBytes: len(body), HTTP: sum}
}

// ---------------------------------------------------------------- metrics

// parseWebhookMetrics reads the notifier's webhook counters from Prometheus text.
func parseWebhookMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		name := f[0]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		switch name {
		case "webhook_deliveries_delivered_total", "webhook_deliveries_failed_total",
			"webhook_delivery_seconds_sum", "webhook_delivery_seconds_count":
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[name] += v
			}
		}
	}
	return out
}

func (b *whBench) webhookMetrics(ctx context.Context) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(b.cfg.URL, "/")+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	return parseWebhookMetrics(resp.Body)
}

// ---------------------------------------------------------------- run

// Run performs the whole benchmark; an error means setup failed.
func (b *whBench) Run(ctx context.Context) (WHReport, error) {
	cfg := b.cfg
	b.base = time.Now()
	r := WHReport{Label: cfg.Label, Scenario: "webhooks", Target: cfg.URL, ServerNote: cfg.ServerNote,
		Agents: cfg.Agents, RateTarget: cfg.Rate, DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		ServerPID: cfg.ServerPID, StartedAt: time.Now().UTC().Format(time.RFC3339)}
	defer b.stop()
	if err := b.setup(ctx); err != nil {
		return r, err
	}
	r.Receiver = b.rvAddr
	r.SocketsJoined = len(b.socks)
	// The API pool idled through the setup's waits: a fresh one (a POST is
	// not retried on a connection the server closed meanwhile).
	b.api = b.newAPI()

	if cfg.FloorDuration > 0 {
		rate := cfg.FloorRate
		if rate <= 0 {
			rate = 2 * cfg.Rate
		}
		body := floorBody(int(b.rv.maxBody.Load()))
		for _, m := range cfg.floorModes() {
			f := b.runFloor(ctx, m, rate, cfg.FloorDuration, body)
			fmt.Fprintf(os.Stderr, "floor %s: %d POSTs, p50 %s ms\n", m, f.HTTP.Count, fmtMs(f.HTTP.P50ms))
			r.Floors = append(r.Floors, f)
		}
	}

	if cfg.Warmup > 0 && ctx.Err() == nil {
		ws := NewStep("write-warmup")
		s := &Scheduler{Rate: cfg.Rate, Duration: cfg.Warmup, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
		s.Run(ctx, func(ctx context.Context, intended time.Time) {
			b.write(ctx, ws, intended, int((b.next.Add(1)-1)%uint64(len(b.agents))), true)
		})
	}
	st := NewStep("write")
	s := &Scheduler{Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
	m0 := b.webhookMetrics(ctx)
	r.LoadAvgStart = LoadAvg()
	cpu0, srv0 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	wall0 := time.Now()
	res := s.Run(ctx, func(ctx context.Context, intended time.Time) {
		b.write(ctx, st, intended, int((b.next.Add(1)-1)%uint64(len(b.agents))), false)
	})
	drainStart := time.Now()
	deadline := drainStart.Add(cfg.Drain)
	for b.missing() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	r.DrainS = time.Since(drainStart).Seconds()
	r.DrainTimedOut = b.missing() > 0
	cpu1, srv1 := ProcessCPU(), ProcCPU(cfg.ServerPID)
	wall := time.Since(wall0)
	r.LoadAvgEnd = LoadAvg()
	m1 := b.webhookMetrics(ctx)
	r.Interrupted = res.Interrupted || ctx.Err() != nil
	r.GenCPUCores = (cpu1 - cpu0).Seconds() / wall.Seconds()
	if cfg.ServerPID > 0 && srv0 >= 0 && srv1 >= 0 {
		r.ServerCPUCores = (srv1 - srv0).Seconds() / wall.Seconds()
	}
	if m0 != nil && m1 != nil {
		r.ServerAttemptsOK = int64(m1["webhook_deliveries_delivered_total"] - m0["webhook_deliveries_delivered_total"])
		r.ServerAttemptsFail = int64(m1["webhook_deliveries_failed_total"] - m0["webhook_deliveries_failed_total"])
		if n := m1["webhook_delivery_seconds_count"] - m0["webhook_delivery_seconds_count"]; n > 0 {
			r.ServerAttemptMs = (m1["webhook_delivery_seconds_sum"] - m0["webhook_delivery_seconds_sum"]) / n * 1e3
		}
	}
	var lag Summary
	FillLatency(&lag, res.LagNs)
	r.GenLagP99ms = lag.P99ms
	r.Scheduled, r.Dropped = res.Scheduled, res.Dropped
	r.Writes = Summarize("write", res.Elapsed(cfg.Duration), res.Dropped, st)
	r.WritesNoID = b.noID.Load()

	b.shutdown.Store(true)
	b.mu.Lock()
	writes := append([]whWrite(nil), b.writes...)
	arr := [2][]whArrival{append([]whArrival(nil), b.arr[0]...), append([]whArrival(nil), b.arr[1]...)}
	b.mu.Unlock()
	a := analyzeWH(writes, arr, cfg.Duration)
	r.Socket, r.Webhook = a.ch[chSocket], a.ch[chWebhook]
	r.Ratio = latencyRatio(r.Webhook.Latency, r.Socket.Latency)
	if len(r.Floors) > 0 {
		r.RatioFloor = latencyRatio(r.Webhook.Latency, r.Floors[0].HTTP)
	}
	r.Paired, r.WebhookFirst, r.CEIDConflicts = a.paired, a.webhookFirst, a.ceidConflicts
	for _, s := range b.socks {
		if s.closed.Load() {
			r.SocketsClosed++
			if p := s.endMsg.Load(); p != nil && r.FirstSocketClose == "" {
				r.FirstSocketClose = *p
			}
		}
	}
	r.Verified = int64(len(arr[chWebhook]))
	r.BadSignatures = b.rv.badSig.Load()
	if p := b.rv.firstBad.Load(); p != nil {
		r.FirstBadSignature = *p
	}
	r.WebhookIDMismatch = b.rv.idMismat.Load()
	r.WebhookBadBodies = b.rv.badBody.Load()
	return r, nil
}

// stop closes the sockets and the receiver.
func (b *whBench) stop() {
	b.shutdown.Store(true)
	for _, s := range b.socks {
		if ws := s.ws.Load(); ws != nil {
			ws.Close()
		}
	}
	if b.rv != nil {
		b.rv.close()
	}
}
