package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeThreads implements the part of the thread-service API the thread
// scenarios use, strictly enough to catch a scenario that writes out of order:
// a second quote, a lock without a complete quote, a lock twice, a step by the
// wrong agent or on someone else's thread all fail.
type fakeThreads struct {
	mu       sync.Mutex
	agents   map[string]string // key -> agent id
	services map[string]string // service id -> provider id
	threads  map[string]*fakeThread
	nextID   int
	writes   int
	failLock int            // answer lock-quote with this status (0: normal)
	failSvc  bool           // reject service creation
	listKeys map[string]int // list reads per key
}

type fakeThread struct {
	requester, provider string
	status              string // negotiating | quote_locked
	quoted              bool
}

var threadPathRe = regexp.MustCompile(`^/api/agent/threads/(thr_[0-9]+)/(messages|lock-quote)$`)

func newFakeThreads() *fakeThreads {
	return &fakeThreads{agents: map[string]string{}, services: map[string]string{},
		threads: map[string]*fakeThread{}, listKeys: map[string]int{}}
}

func (f *fakeThreads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, msg string) { reply(code, map[string]string{"error": msg}) }
	var body map[string]any
	if r.Method == "POST" {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fail(400, "bad json")
			return
		}
	}
	if r.URL.Path == "/api/agent/signup" && r.Method == "POST" {
		f.nextID++
		id, key := fmt.Sprintf("agt_%d", f.nextID), fmt.Sprintf("key-%d", f.nextID)
		f.agents[key] = id
		reply(201, map[string]string{"agent_id": id, "api_key": key})
		return
	}
	me, ok := f.agents[r.Header.Get("x-api-key")]
	if !ok {
		fail(401, "Invalid API key")
		return
	}
	switch {
	case r.URL.Path == "/api/agent/services" && r.Method == "POST":
		price, _ := body["price"].(map[string]any)
		if f.failSvc || body["title"] == nil || price["amount"] == nil {
			fail(400, "bad service")
			return
		}
		f.nextID++
		id := fmt.Sprintf("svc_%d", f.nextID)
		f.services[id] = me
		f.writes++
		reply(201, map[string]any{"id": id, "provider_id": me, "active": true})
	case r.URL.Path == threadsPath && r.Method == "POST":
		svc, _ := body["service_id"].(string)
		prov, ok := f.services[svc]
		if !ok {
			fail(404, "Service not found")
			return
		}
		if prov == me || body["mode"] != "quick_quote" || body["message"] == "" {
			fail(422, "cannot open")
			return
		}
		f.nextID++
		id := fmt.Sprintf("thr_%d", f.nextID)
		f.threads[id] = &fakeThread{requester: me, provider: prov, status: "negotiating"}
		f.writes++
		reply(201, map[string]any{"id": id, "status": "negotiating", "quote_to_offer_next_step": map[string]any{"action": "post_quote"}})
	case r.URL.Path == threadsPath && r.Method == "GET":
		f.listKeys[r.Header.Get("x-api-key")]++
		mode := r.URL.Query().Get("mode")
		rows := []map[string]string{}
		for id, th := range f.threads {
			if (mode != "incoming" && th.requester == me) || (mode != "outgoing" && th.provider == me) {
				rows = append(rows, map[string]string{"id": id, "status": th.status})
			}
		}
		if len(rows) > 20 {
			rows = rows[:20]
		}
		reply(200, map[string]any{"threads": rows, "next_cursor": nil})
	default:
		m := threadPathRe.FindStringSubmatch(r.URL.Path)
		if m == nil || r.Method != "POST" {
			fail(404, "Not found")
			return
		}
		th := f.threads[m[1]]
		if th == nil {
			fail(404, "Thread not found")
			return
		}
		if me != th.requester && me != th.provider {
			fail(403, "Not authorized to access this thread")
			return
		}
		if m[2] == "messages" {
			terms, _ := body["terms"].(map[string]any)
			if body["type"] != "quote" || len(terms) != 5 {
				fail(400, "want a quote with 5 terms")
				return
			}
			if th.status != "negotiating" || th.quoted {
				fail(409, "quoted twice or not negotiating")
				return
			}
			th.quoted = true
			f.writes++
			reply(201, map[string]any{"message": map[string]string{"id": "msg_1"}, "thread": map[string]string{"id": m[1]}})
			return
		}
		if me != th.provider {
			fail(403, "requester cannot lock")
			return
		}
		if f.failLock != 0 {
			fail(f.failLock, "lock broken")
			return
		}
		if th.status != "negotiating" || !th.quoted {
			fail(409, "locked twice or without a quote")
			return
		}
		th.status = "quote_locked"
		f.writes++
		reply(200, map[string]any{"id": m[1], "status": "quote_locked"})
	}
}

func TestThreadNegotiationAgainstFake(t *testing.T) {
	f := newFakeThreads()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "thread-negotiation", 300, 500*time.Millisecond)
	sc := &ThreadNegotiation{API: testAPI(t, srv.URL, cfg.Conns, cfg.Timeout), Pairs: 4, Concurrency: 3}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.services) != 4 || len(f.threads) != 1 || f.writes != 4+3 {
		t.Fatalf("setup: %d services, %d threads, %d writes", len(f.services), len(f.threads), f.writes)
	}
	r := Execute(context.Background(), sc, cfg)
	if r.Overall.Count != 150 || r.Overall.OK != 150 || r.Transitions != 150 || r.WritesPerArrival != 1 {
		t.Fatalf("overall %+v transitions %d", r.Overall, r.Transitions)
	}
	open, quote, lock := r.Steps[0], r.Steps[1], r.Steps[2]
	if open.Name != "open" || quote.Name != "quote" || lock.Name != "lock" {
		t.Fatalf("steps %v %v %v", open.Name, quote.Name, lock.Name)
	}
	// Every thread goes open -> quote -> lock: a step never outnumbers the one before it,
	// and only the threads still in flight at the end are short of their lock.
	if quote.OK > open.OK || lock.OK > quote.OK || lock.OK < 40 {
		t.Fatalf("open/quote/lock = %d/%d/%d", open.OK, quote.OK, lock.OK)
	}
	locked := 0
	for _, th := range f.threads {
		if th.status == "quote_locked" {
			locked++
		}
	}
	if locked != int(lock.OK)+1 || len(f.threads) != int(open.OK)+1 { // +1: the setup probe
		t.Fatalf("server: %d threads, %d locked; client: %d opens, %d locks", len(f.threads), locked, open.OK, lock.OK)
	}
	// The threads spread over the pairs.
	perRequester := map[string]int{}
	for _, th := range f.threads {
		perRequester[th.requester]++
	}
	if len(perRequester) != 4 {
		t.Fatalf("threads per requester %v", perRequester)
	}
}

func TestThreadNegotiationFailuresByStatus(t *testing.T) {
	f := newFakeThreads()
	srv := httptest.NewServer(f)
	defer srv.Close()
	sc := &ThreadNegotiation{API: testAPI(t, srv.URL, 8, time.Second), Pairs: 2}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failLock = 409
	f.mu.Unlock()
	r := Execute(context.Background(), sc, testConfig(srv.URL, "thread-negotiation", 300, 300*time.Millisecond))
	open, quote, lock := r.Steps[0], r.Steps[1], r.Steps[2]
	if lock.OK != 0 || lock.Non2xx < 20 || lock.Non2xxByStatus[409] != lock.Non2xx || open.Non2xx+quote.Non2xx != 0 {
		t.Fatalf("steps %+v", r.Steps)
	}
	if r.Overall.Non2xxByStatus[409] != lock.Non2xx || r.Transitions != open.OK+quote.OK {
		t.Fatalf("overall %+v transitions %d", r.Overall, r.Transitions)
	}
	// A thread whose lock failed is abandoned, never retried: one lock attempt per quote.
	if lock.Count > quote.OK {
		t.Fatalf("%d lock attempts for %d quotes", lock.Count, quote.OK)
	}
	var sb strings.Builder
	PrintTable(&sb, r)
	for _, want := range []string{"non-2xx by status: 409 x ", "[lock] 409 x ", "first failure [lock]: HTTP 409", "lock broken", "per request"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, sb.String())
		}
	}
	sb.Reset()
	PrintCompare(&sb, "", r, Report{})
	for _, want := range []string{"non2xx by status", "409 x", "  lock 2xx/s", "  open 2xx/s"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("compare lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestThreadNegotiationSetupFailureShowsBody(t *testing.T) {
	f := newFakeThreads()
	f.failSvc = true
	srv := httptest.NewServer(f)
	defer srv.Close()
	err := (&ThreadNegotiation{API: testAPI(t, srv.URL, 2, time.Second), Pairs: 2}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "POST /api/agent/services: HTTP 400") || !strings.Contains(err.Error(), "bad service") {
		t.Fatalf("err = %v", err)
	}
	f = newFakeThreads()
	f.failLock = 422
	srv2 := httptest.NewServer(f)
	defer srv2.Close()
	err = (&ThreadNegotiation{API: testAPI(t, srv2.URL, 2, time.Second), Pairs: 1}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "probe lock") || !strings.Contains(err.Error(), "HTTP 422") {
		t.Fatalf("err = %v", err)
	}
}

func TestThreadListAgainstFake(t *testing.T) {
	f := newFakeThreads()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "thread-list", 400, 500*time.Millisecond)
	sc := &ThreadList{API: testAPI(t, srv.URL, cfg.Conns, cfg.Timeout), Agents: 12, ThreadsPerAgent: 3,
		Mode: "mixed", State: "locked", Concurrency: 4}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, in := map[string]int{}, map[string]int{}
	for _, th := range f.threads {
		if th.status != "quote_locked" || th.requester == th.provider {
			t.Fatalf("thread %+v", th)
		}
		out[th.requester]++
		in[th.provider]++
	}
	if len(f.threads) != 36 || len(out) != 12 || len(in) != 12 {
		t.Fatalf("%d threads; outgoing %v incoming %v", len(f.threads), out, in)
	}
	for a := range out {
		if out[a] != 3 || in[a] != 3 {
			t.Fatalf("agent %s: %d outgoing, %d incoming", a, out[a], in[a])
		}
	}
	r := Execute(context.Background(), sc, cfg)
	if len(r.Steps) != 2 || r.Steps[0].Name != "outgoing" || r.Steps[1].Name != "incoming" {
		t.Fatalf("steps %+v", r.Steps)
	}
	if r.Steps[0].OK != 100 || r.Steps[1].OK != 100 || r.Overall.Non2xx+r.Overall.Errors != 0 || r.Transitions != 0 {
		t.Fatalf("steps %+v overall %+v", r.Steps, r.Overall)
	}
	if len(f.listKeys) < 10 { // 200 reads with random keys out of 12 agents
		t.Fatalf("reads spread over %d keys only", len(f.listKeys))
	}
}

func TestThreadListSetupChecks(t *testing.T) {
	f := newFakeThreads()
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := testAPI(t, srv.URL, 2, time.Second)
	for _, sc := range []*ThreadList{
		{API: api, Agents: 3, ThreadsPerAgent: 3, Mode: "mixed", State: "opened"},
		{API: api, Agents: 3, ThreadsPerAgent: 0, Mode: "mixed", State: "opened"},
	} {
		if err := sc.Setup(context.Background()); err == nil || !strings.Contains(err.Error(), "-agents > -threads-per-agent") {
			t.Fatalf("err = %v", err)
		}
	}
	if err := (&ThreadList{API: api, Agents: 3, ThreadsPerAgent: 1, Mode: "sideways", State: "opened"}).Setup(context.Background()); err == nil {
		t.Fatal("bad mode accepted")
	}
	// Threads only opened: no quote, no lock.
	sc := &ThreadList{API: api, Agents: 4, ThreadsPerAgent: 2, Mode: "all", State: "opened", Concurrency: 2}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, th := range f.threads {
		if th.quoted || th.status != "negotiating" {
			t.Fatalf("thread %+v", th)
		}
	}
}

func TestThreadQueueFIFO(t *testing.T) {
	var q threadQueue
	if _, ok := q.pop(); ok {
		t.Fatal("empty queue popped")
	}
	mk := func(i int) *negThread { return &negThread{path: fmt.Sprint(i)} }
	// Interleave pushes and pops across the compaction threshold.
	want := 0
	for i := 0; i < 5000; i++ {
		q.push(mk(i))
		if i%3 == 2 {
			th, ok := q.pop()
			if !ok || th.path != fmt.Sprint(want) {
				t.Fatalf("pop %d: %v %v", want, th, ok)
			}
			want++
		}
	}
	if q.Len() != 5000-want {
		t.Fatalf("len %d want %d", q.Len(), 5000-want)
	}
	for ; want < 5000; want++ {
		th, ok := q.pop()
		if !ok || th.path != fmt.Sprint(want) {
			t.Fatalf("pop %d: %v %v", want, th, ok)
		}
	}
	if _, ok := q.pop(); ok || q.Len() != 0 {
		t.Fatal("queue not empty")
	}
}

func TestThreadQueueConcurrent(t *testing.T) {
	var q threadQueue
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				q.push(&negThread{})
				if i%2 == 0 {
					q.pop()
				}
			}
		}()
	}
	wg.Wait()
	if q.Len() != 8*500 {
		t.Fatalf("len %d", q.Len())
	}
}

func TestListTargetsBalanced(t *testing.T) {
	for _, c := range []struct{ agents, per int }{{200, 5}, {6, 5}, {2, 1}, {50, 7}} {
		in := make([]int, c.agents)
		for i := 0; i < c.agents; i++ {
			seen := map[int]bool{}
			for k := 0; k < c.per; k++ {
				j := listTarget(i, k, c.agents)
				if j == i || seen[j] || j < 0 || j >= c.agents {
					t.Fatalf("%+v: agent %d thread %d -> %d", c, i, k, j)
				}
				seen[j] = true
				in[j]++
			}
		}
		for j, n := range in {
			if n != c.per {
				t.Fatalf("%+v: agent %d receives %d threads", c, j, n)
			}
		}
	}
}

func TestListPathsAndStates(t *testing.T) {
	names, paths, err := listPaths("mixed")
	if err != nil || strings.Join(names, ",") != "outgoing,incoming" ||
		strings.Join(paths, ",") != "/api/agent/threads?mode=outgoing,/api/agent/threads?mode=incoming" {
		t.Fatalf("%v %v %v", names, paths, err)
	}
	if _, paths, _ := listPaths("all"); len(paths) != 1 || paths[0] != "/api/agent/threads" {
		t.Fatalf("all: %v", paths)
	}
	if _, _, err := listPaths("both"); err == nil {
		t.Fatal("unknown mode accepted")
	}
	for name, want := range map[string]threadStep{"opened": stepQuote, "quoted": stepLock, "locked": stepDone} {
		if got, err := threadStateIndex(name); err != nil || got != want {
			t.Fatalf("%s -> %v %v", name, got, err)
		}
	}
	if _, err := threadStateIndex("offered"); err == nil {
		t.Fatal("unknown state accepted")
	}
}

func TestBenchBodies(t *testing.T) {
	var q struct {
		Type  string         `json:"type"`
		Terms map[string]any `json:"terms"`
	}
	if err := json.Unmarshal(quoteBody, &q); err != nil || q.Type != "quote" {
		t.Fatalf("%s %v", quoteBody, err)
	}
	// Every term the lock requires (docs/thread-service.md, Lock).
	for _, k := range []string{"deliverable", "timeline", "acceptance_criteria", "revision_boundary"} {
		if s, _ := q.Terms[k].(string); s == "" {
			t.Fatalf("quote lacks %s: %s", k, quoteBody)
		}
	}
	budget, _ := q.Terms["budget"].(map[string]any)
	for _, k := range []string{"amount", "token", "network"} {
		if s, _ := budget[k].(string); s == "" {
			t.Fatalf("quote lacks budget.%s: %s", k, quoteBody)
		}
	}
	var open map[string]string
	if err := json.Unmarshal(openBody("svc_x"), &open); err != nil || open["service_id"] != "svc_x" || open["mode"] != "quick_quote" || open["message"] == "" {
		t.Fatalf("%v %v", open, err)
	}
	var svc map[string]any
	if err := json.Unmarshal(serviceBody(3), &svc); err != nil || svc["title"] != "bench service 3" {
		t.Fatalf("%v %v", svc, err)
	}
}

func TestStatusBreakdown(t *testing.T) {
	st := NewStep("x")
	for _, code := range []int{200, 422, 409, 409, 500, 201} {
		st.Add(Outcome{Status: code})
	}
	st.Add(Outcome{Err: fmt.Errorf("reset")})
	s := Summarize("x", time.Second, 0, st)
	if s.Non2xx != 4 || s.Errors != 1 || StatusBreakdown(s.Non2xxByStatus) != "409 x 2, 422 x 1, 500 x 1" {
		t.Fatalf("%+v %q", s, StatusBreakdown(s.Non2xxByStatus))
	}
	other := NewStep("y")
	other.Add(Outcome{Status: 409})
	if m := Summarize("all", time.Second, 0, st, other).Non2xxByStatus; m[409] != 3 || len(m) != 3 {
		t.Fatalf("merged %v", m)
	}
	if StatusBreakdown(nil) != "" {
		t.Fatal("empty breakdown")
	}
	// The JSON line keeps the breakdown (status as the key).
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"non_2xx_by_status":{"409":2,"422":1,"500":1}`) {
		t.Fatalf("%s", b)
	}
}
