package main

// Thread-service scenarios (docs/thread-service.md): thread-negotiation (one
// durable write per arrival, cycling each thread through open -> quote ->
// lock) and thread-list (GET /api/agent/threads with many agents' keys).

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const threadsPath = "/api/agent/threads"

// Request bodies of the thread scenarios. The quote carries every term, so
// that the provider can lock it.
var (
	benchTerms = map[string]any{
		"deliverable":         "A markdown document with the page copy",
		"budget":              map[string]string{"amount": "25.00", "token": "USDC", "network": "base"},
		"timeline":            "3 days",
		"acceptance_criteria": "Covers the five sections of the brief",
		"revision_boundary":   "Two rounds of edits",
	}
	quoteBody = mustJSON(map[string]any{"type": "quote", "body": "bench quote", "terms": benchTerms})
	lockBody  = []byte(`{}`)
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// serviceBody is the body of POST /api/agent/services for the i-th bench service.
func serviceBody(i int) []byte {
	return mustJSON(map[string]any{
		"title":       fmt.Sprintf("bench service %d", i),
		"description": "Long-form copy for one landing page (benchmark)",
		"deliverable": "A markdown document with the page copy",
		"price":       map[string]string{"amount": "25.00", "token": "USDC", "network": "base"},
		"timeline":    "3 days",
		"tags":        []string{"bench", "copywriting"},
	})
}

// openBody is the body of POST /api/agent/threads on serviceID.
func openBody(serviceID string) []byte {
	return mustJSON(map[string]string{"service_id": serviceID, "mode": "quick_quote", "message": "bench: I need landing page copy"})
}

// ThreadParty is a provider with one published service and a requester who
// opens threads on it.
type ThreadParty struct {
	Requester Agent
	Provider  Agent
	ServiceID string
	openBody  []byte
}

// publishService publishes the i-th bench service as p and returns its id.
func (a *API) publishService(ctx context.Context, p Agent, i int) (string, error) {
	return a.SetupCreate(ctx, "POST", "/api/agent/services", p.Key, serviceBody(i))
}

// ---------------------------------------------------------------- the negotiation cycle

// threadStep is the next write a negotiation thread needs.
type threadStep int

const (
	stepOpen  threadStep = iota // requester: POST /api/agent/threads
	stepQuote                   // provider:  POST /api/agent/threads/{id}/messages (a quote with every term)
	stepLock                    // provider:  POST /api/agent/threads/{id}/lock-quote
	stepDone
)

var threadStepNames = []string{"open", "quote", "lock"}

// negThread is one thread of thread-negotiation on its way to quote_locked.
type negThread struct {
	party *ThreadParty
	path  string // /api/agent/threads/{id}, once opened
	next  threadStep
}

// threadQueue is the FIFO of threads waiting for their next write. Unbounded:
// it never makes an arrival wait.
type threadQueue struct {
	mu   sync.Mutex
	buf  []*negThread
	head int
}

func (q *threadQueue) push(t *negThread) {
	q.mu.Lock()
	q.buf = append(q.buf, t)
	q.mu.Unlock()
}

// pop takes the oldest waiting thread, if any.
func (q *threadQueue) pop() (*negThread, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.buf) {
		return nil, false
	}
	t := q.buf[q.head]
	q.buf[q.head] = nil
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	return t, true
}

func (q *threadQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) - q.head
}

// ThreadNegotiation: setup signs up Pairs provider/requester pairs and
// publishes one service per provider. Each arrival is ONE durable write: the
// next step of the oldest thread waiting for one (quote after open, lock after
// quote), or, when no thread is waiting (all in flight, or all locked), the
// opening of a new thread by the next pair. A thread is queued again only
// after its previous write answered 2xx, so the steps of one thread never
// overlap, and an arrival never waits for another: the schedule stays open.
// At a sustainable rate every opened thread gets its quote and its lock, and
// the three kinds are a third each; when the server falls behind, more
// arrivals find no waiting thread and open new ones (visible in the per-step
// counts).
type ThreadNegotiation struct {
	API         *API
	Pairs       int
	Concurrency int

	parties []*ThreadParty
	next    atomic.Uint64
	ready   threadQueue
	noID    atomic.Int64 // 2xx opens whose thread id could not be read
}

func (t *ThreadNegotiation) Name() string            { return "thread-negotiation" }
func (t *ThreadNegotiation) Unit() string            { return "request" }
func (t *ThreadNegotiation) RequestsPerArrival() int { return 1 }
func (t *ThreadNegotiation) WritesPerArrival() int   { return 1 }
func (t *ThreadNegotiation) NewMetrics() *Metrics {
	m := &Metrics{}
	for _, n := range threadStepNames {
		m.Steps = append(m.Steps, NewStep(n))
	}
	return m
}

func (t *ThreadNegotiation) Describe() map[string]any {
	d := map[string]any{"pairs": t.Pairs, "cycle": threadStepNames, "threads_waiting_at_end": t.ready.Len()}
	if n := t.noID.Load(); n > 0 {
		d["opened_without_id"] = n
	}
	return d
}

// signupParties signs up n requester/provider pairs and publishes one service
// per provider (untimed).
func signupParties(ctx context.Context, api *API, n, conc int) ([]*ThreadParty, error) {
	parties := make([]*ThreadParty, n)
	err := forEachIndex(ctx, n, conc, func(ctx context.Context, i int) error {
		req, err := api.Signup(ctx, fmt.Sprintf("bench-requester-%d", i))
		if err != nil {
			return fmt.Errorf("signup of requester %d: %v", i, err)
		}
		prov, err := api.Signup(ctx, fmt.Sprintf("bench-provider-%d", i))
		if err != nil {
			return fmt.Errorf("signup of provider %d: %v", i, err)
		}
		svc, err := api.publishService(ctx, prov, i)
		if err != nil {
			return fmt.Errorf("service of provider %d: %v", i, err)
		}
		parties[i] = &ThreadParty{Requester: req, Provider: prov, ServiceID: svc, openBody: openBody(svc)}
		return nil
	})
	return parties, err
}

func (t *ThreadNegotiation) Setup(ctx context.Context) error {
	if t.Pairs < 1 {
		return fmt.Errorf("-pairs must be >= 1")
	}
	t0 := time.Now()
	parties, err := signupParties(ctx, t.API, t.Pairs, t.Concurrency)
	if err != nil {
		return err
	}
	t.parties = parties
	// One untimed thread through the whole cycle, checking the end state, to fail early and clearly.
	p := t.parties[0]
	id, err := t.API.SetupCreate(ctx, "POST", threadsPath, p.Requester.Key, p.openBody)
	if err != nil {
		return fmt.Errorf("probe open: %v", err)
	}
	if _, err := t.API.SetupCall(ctx, "POST", threadsPath+"/"+id+"/messages", p.Provider.Key, quoteBody); err != nil {
		return fmt.Errorf("probe quote: %v", err)
	}
	rb, err := t.API.SetupCall(ctx, "POST", threadsPath+"/"+id+"/lock-quote", p.Provider.Key, lockBody)
	if err != nil {
		return fmt.Errorf("probe lock: %v", err)
	}
	var locked struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(rb, &locked) != nil || locked.Status != "quote_locked" {
		return fmt.Errorf("probe lock: 2xx but the thread is not quote_locked: %s", excerpt(rb))
	}
	fmt.Fprintf(os.Stderr, "setup: %d provider/requester pairs signed up, %d services published in %.1fs; probe thread open -> quote -> lock ok\n",
		len(t.parties), len(t.parties), time.Since(t0).Seconds())
	return nil
}

func (t *ThreadNegotiation) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	th, ok := t.ready.pop()
	if !ok {
		th = &negThread{party: t.parties[(t.next.Add(1)-1)%uint64(len(t.parties))], next: stepOpen}
	}
	if t.write(ctx, m, intended, th) {
		t.ready.push(th)
	}
}

// write performs th's next step, recorded in its step of m, and reports
// whether th needs another one.
func (t *ThreadNegotiation) write(ctx context.Context, m *Metrics, intended time.Time, th *negThread) bool {
	p := th.party
	var o Outcome
	var rb []byte
	switch th.next {
	case stepOpen:
		o, rb, _ = t.API.Timed(ctx, m.Steps[stepOpen], intended, "POST", threadsPath, p.Requester.Key, p.openBody, true)
	case stepQuote:
		o, _, _ = t.API.Timed(ctx, m.Steps[stepQuote], intended, "POST", th.path+"/messages", p.Provider.Key, quoteBody, false)
	case stepLock:
		o, _, _ = t.API.Timed(ctx, m.Steps[stepLock], intended, "POST", th.path+"/lock-quote", p.Provider.Key, lockBody, false)
	default:
		return false
	}
	if o.Err != nil || !is2xx(o.Status) {
		return false // the thread is abandoned; the failure is in the step's figures
	}
	if th.next == stepOpen {
		id, ok := parseID(rb)
		if !ok {
			t.noID.Add(1)
			return false
		}
		th.path = threadsPath + "/" + id
	}
	th.next++
	return th.next != stepDone
}

// ---------------------------------------------------------------- thread-list

// List modes of thread-list: which `mode` query each arrival sends.
var listModes = []string{"outgoing", "incoming", "all", "mixed"}

// listPaths returns the request paths of a list mode, one step each ("all":
// no `mode` parameter; "mixed": outgoing and incoming alternately).
func listPaths(mode string) (names, paths []string, err error) {
	switch mode {
	case "outgoing", "incoming":
		return []string{mode}, []string{threadsPath + "?mode=" + mode}, nil
	case "all":
		return []string{"all"}, []string{threadsPath}, nil
	case "mixed":
		return []string{"outgoing", "incoming"}, []string{threadsPath + "?mode=outgoing", threadsPath + "?mode=incoming"}, nil
	}
	return nil, nil, fmt.Errorf("unknown -list-mode %q (want one of %s)", mode, strings.Join(listModes, ", "))
}

// Thread states the thread-list setup can leave its threads in.
var threadStates = []string{"opened", "quoted", "locked"}

func threadStateIndex(name string) (threadStep, error) {
	for i, n := range threadStates {
		if n == name {
			return threadStep(i + 1), nil // the first step not taken
		}
	}
	return 0, fmt.Errorf("unknown -thread-state %q (want one of %s)", name, strings.Join(threadStates, ", "))
}

// listTarget is the agent whose service agent i opens its k-th thread on
// (k in [0, perAgent)): the next perAgent agents, wrapping around. Every
// agent then opens perAgent threads and receives perAgent threads, never on
// its own service (needs agents > perAgent).
func listTarget(i, k, agents int) int { return (i + 1 + k) % agents }

// ThreadList reads thread lists: setup signs up Agents agents, each publishes
// one service and opens ThreadsPerAgent threads on the services of the next
// agents (each thread advanced to State), so that every agent has
// ThreadsPerAgent outgoing and ThreadsPerAgent incoming threads. Each arrival
// is one GET /api/agent/threads?mode=... with a random agent's key.
type ThreadList struct {
	API             *API
	Agents          int
	ThreadsPerAgent int
	Mode            string
	State           string
	Concurrency     int

	agents []Agent
	paths  []string
	next   atomic.Uint64
}

func (l *ThreadList) Name() string            { return "thread-list" }
func (l *ThreadList) Unit() string            { return "request" }
func (l *ThreadList) RequestsPerArrival() int { return 1 }
func (l *ThreadList) WritesPerArrival() int   { return 0 }
func (l *ThreadList) NewMetrics() *Metrics {
	names, _, _ := listPaths(l.Mode)
	m := &Metrics{}
	for _, n := range names {
		m.Steps = append(m.Steps, NewStep(n))
	}
	return m
}

func (l *ThreadList) Describe() map[string]any {
	return map[string]any{"agents": l.Agents, "threads_per_agent": l.ThreadsPerAgent,
		"threads": l.Agents * l.ThreadsPerAgent, "list_mode": l.Mode, "thread_state": l.State}
}

func (l *ThreadList) Setup(ctx context.Context) error {
	if l.ThreadsPerAgent < 1 || l.Agents <= l.ThreadsPerAgent {
		return fmt.Errorf("need -threads-per-agent >= 1 and -agents > -threads-per-agent (got %d and %d)", l.ThreadsPerAgent, l.Agents)
	}
	_, paths, err := listPaths(l.Mode)
	if err != nil {
		return err
	}
	upto, err := threadStateIndex(l.State)
	if err != nil {
		return err
	}
	l.paths = paths
	t0 := time.Now()
	l.agents = make([]Agent, l.Agents)
	services := make([]string, l.Agents)
	err = forEachIndex(ctx, l.Agents, l.Concurrency, func(ctx context.Context, i int) error {
		a, err := l.API.Signup(ctx, fmt.Sprintf("bench-agent-%d", i))
		if err != nil {
			return fmt.Errorf("signup of agent %d: %v", i, err)
		}
		svc, err := l.API.publishService(ctx, a, i)
		if err != nil {
			return fmt.Errorf("service of agent %d: %v", i, err)
		}
		l.agents[i], services[i] = a, svc
		return nil
	})
	if err != nil {
		return err
	}
	n := l.Agents * l.ThreadsPerAgent
	err = forEachIndex(ctx, n, l.Concurrency, func(ctx context.Context, j int) error {
		i, k := j/l.ThreadsPerAgent, j%l.ThreadsPerAgent
		req, prov := l.agents[i], l.agents[listTarget(i, k, l.Agents)]
		id, err := l.API.SetupCreate(ctx, "POST", threadsPath, req.Key, openBody(services[listTarget(i, k, l.Agents)]))
		if err != nil {
			return fmt.Errorf("thread %d of %d: %v", j+1, n, err)
		}
		if upto > stepQuote {
			if _, err := l.API.SetupCall(ctx, "POST", threadsPath+"/"+id+"/messages", prov.Key, quoteBody); err != nil {
				return fmt.Errorf("thread %d of %d: %v", j+1, n, err)
			}
		}
		if upto > stepLock {
			if _, err := l.API.SetupCall(ctx, "POST", threadsPath+"/"+id+"/lock-quote", prov.Key, lockBody); err != nil {
				return fmt.Errorf("thread %d of %d: %v", j+1, n, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "setup: %d agents, %d services, %d threads (%s) in %.1fs\n", l.Agents, l.Agents, n, l.State, time.Since(t0).Seconds())
	// Untimed probe reads: agent 0 must see its threads, in both directions.
	want := min(l.ThreadsPerAgent, 20) // the default page size is 20
	for _, mode := range []string{"outgoing", "incoming"} {
		rb, err := l.API.SetupCall(ctx, "GET", threadsPath+"?mode="+mode, l.agents[0].Key, nil)
		if err != nil {
			return fmt.Errorf("probe read: %v", err)
		}
		var page struct {
			Threads []json.RawMessage `json:"threads"`
		}
		if json.Unmarshal(rb, &page) != nil || len(page.Threads) != want {
			return fmt.Errorf("probe read: GET %s?mode=%s: want %d threads, got: %s", threadsPath, mode, want, excerpt(rb))
		}
	}
	return nil
}

func (l *ThreadList) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	k := int((l.next.Add(1) - 1) % uint64(len(l.paths)))
	a := l.agents[rand.IntN(len(l.agents))]
	l.API.Timed(ctx, m.Steps[k], intended, "GET", l.paths[k], a.Key, nil, false)
}
