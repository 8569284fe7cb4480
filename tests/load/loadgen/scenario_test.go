package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI implements the agentlancer job API closely enough to exercise the
// scenarios: ownership checks, strict state order, unique tx hashes.
type fakeAPI struct {
	mu       sync.Mutex
	agents   map[string]string // key -> agent id
	jobs     map[int]*fakeJob
	txs      map[string]bool
	nextID   int
	failStep string // respond 500 to this step name
	writes   int
}

type fakeJob struct {
	client, provider string
	state            int // index into phaseNames
}

var (
	txRe   = regexp.MustCompile(`^0x[0-9a-f]{64}$`)
	pathRe = regexp.MustCompile(`^/api/agents/(providers/)?jobs/(\d+)(/([a-z]+))?$`)
)

func newFakeAPI() *fakeAPI {
	return &fakeAPI{agents: map[string]string{}, jobs: map[int]*fakeJob{}, txs: map[string]bool{}}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	if r.Method == "POST" {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":"bad json"}`, 400)
			return
		}
	}
	fail := func(code int, msg string) { w.WriteHeader(code); fmt.Fprintf(w, `{"error":%q}`, msg) }
	if r.URL.Path == "/api/agent/signup" && r.Method == "POST" {
		if name, _ := body["name"].(string); !strings.HasPrefix(name, "bench-") {
			fail(400, "name")
			return
		}
		f.nextID++
		id, key := fmt.Sprintf("agent-%d", f.nextID), fmt.Sprintf("key-%d", f.nextID)
		f.agents[key] = id
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"agent_id":%q,"api_key":%q}`, id, key)
		return
	}
	me, ok := f.agents[r.Header.Get("x-api-key")]
	if !ok {
		fail(401, "no key")
		return
	}
	if r.URL.Path == "/api/agents/jobs" && r.Method == "POST" {
		if f.failStep == "create" {
			fail(500, "create broken")
			return
		}
		prov, _ := body["providerId"].(string)
		if body["budget"] != "10" || body["tokenAddress"] != "0x1111111111111111111111111111111111111111" || prov == "" {
			fail(400, "bad job")
			return
		}
		f.nextID++
		f.jobs[f.nextID] = &fakeJob{client: me, provider: prov}
		f.writes++
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"id":%d,"status":"created"}`, f.nextID)
		return
	}
	m := pathRe.FindStringSubmatch(r.URL.Path)
	if m == nil {
		fail(404, "no route")
		return
	}
	id, _ := strconv.Atoi(m[2])
	job := f.jobs[id]
	if job == nil {
		fail(404, "no job")
		return
	}
	asProvider, step := m[1] != "", m[4]
	if r.Method == "GET" && step == "" && !asProvider {
		if me != job.client {
			fail(403, "not yours")
			return
		}
		fmt.Fprintf(w, `{"id":%d,"state":%q}`, id, phaseNames[job.state])
		return
	}
	if r.Method != "POST" {
		fail(405, "method")
		return
	}
	if step == f.failStep {
		fail(500, step+" broken")
		return
	}
	k := -1
	for i, t := range transitions {
		if t.name == step && t.asProvider == asProvider {
			k = i
		}
	}
	if k < 0 {
		fail(404, "no such transition")
		return
	}
	owner := job.client
	if asProvider {
		owner = job.provider
	}
	if me != owner {
		fail(403, "wrong agent")
		return
	}
	if job.state != k {
		fail(409, fmt.Sprintf("job in %s, cannot %s", phaseNames[job.state], step))
		return
	}
	if step == "escrow" {
		tx, _ := body["txHash"].(string)
		if !txRe.MatchString(tx) || f.txs[tx] {
			fail(400, "bad or reused txHash "+tx)
			return
		}
		f.txs[tx] = true
	}
	job.state++
	f.writes++
	if step == "escrow" {
		w.WriteHeader(200)
		fmt.Fprint(w, `{"ok":true}`)
		return
	}
	w.WriteHeader(204)
}

func testConfig(url, scenario string, rate float64, d time.Duration) *Config {
	return &Config{Scenario: scenario, URL: url, Rate: rate, Duration: d, Conns: 16,
		MaxInFlight: 1000, Timeout: 5 * time.Second, Drain: 5 * time.Second}
}

func TestProviderFlowAgainstFakeAPI(t *testing.T) {
	f := newFakeAPI()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "provider-flow", 100, 500*time.Millisecond)
	api := testAPI(t, srv.URL, cfg.Conns, cfg.Timeout)
	sc := &ProviderFlow{API: api, Pairs: 5}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := Execute(context.Background(), sc, cfg)
	if r.Launched != 50 || r.Iteration == nil || r.Iteration.OK != 50 {
		t.Fatalf("launched %d, iteration %+v", r.Launched, r.Iteration)
	}
	if len(r.Steps) != 7 || r.WritesPerArrival != 7 {
		t.Fatalf("steps %d writes %d", len(r.Steps), r.WritesPerArrival)
	}
	for _, s := range r.Steps {
		if s.Count != 50 || s.OK != 50 || s.Samples != 50 {
			t.Fatalf("step %+v", s)
		}
	}
	if r.Transitions != 350 || r.Overall.Count != 350 || r.Overall.Non2xx+r.Overall.Errors != 0 {
		t.Fatalf("transitions %d overall %+v", r.Transitions, r.Overall)
	}
	if want := 350 / r.ElapsedS; r.TransitionsPerS != want {
		t.Fatalf("transitions/s %v want %v", r.TransitionsPerS, want)
	}
	// setup probe (1 walk-through) + 50 timed ones, 7 writes each
	if f.writes != 7*51 {
		t.Fatalf("server saw %d writes", f.writes)
	}
	// the whole iteration takes longer than any single step
	if r.Iteration.Maxms < r.Steps[0].P50ms {
		t.Fatalf("iteration latency %+v", r.Iteration)
	}
	var sb strings.Builder
	PrintTable(&sb, r)
	for _, want := range []string{"escrow", "evaluate", "iteration", "durable transitions: 350"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestProviderFlowSetupFailureShowsBody(t *testing.T) {
	f := newFakeAPI()
	f.failStep = "escrow"
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := testAPI(t, srv.URL, 2, time.Second)
	sc := &ProviderFlow{API: api, Pairs: 2}
	err := sc.Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "escrow broken") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
}

func TestSetupFailsClearlyWhenServerAbsent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	api := testAPI(t, url, 2, time.Second)
	err := (&JobGet{API: api, Jobs: 3}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "signup") || !strings.Contains(err.Error(), "transport error") {
		t.Fatalf("err = %v", err)
	}
}

func TestProviderFlowMidRunFailuresAreReportedNotFatal(t *testing.T) {
	f := newFakeAPI()
	srv := httptest.NewServer(f)
	defer srv.Close()
	api := testAPI(t, srv.URL, 8, time.Second)
	sc := &ProviderFlow{API: api, Pairs: 2}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failStep = "deliverable"
	f.mu.Unlock()
	r := Execute(context.Background(), sc, testConfig(srv.URL, "provider-flow", 100, 200*time.Millisecond))
	if r.Iteration.OK != 0 || r.Iteration.Non2xx != 20 || r.Iteration.Samples != 0 {
		t.Fatalf("iteration %+v", r.Iteration)
	}
	if r.Steps[4].OK != 20 || r.Steps[5].Non2xx != 20 || r.Steps[6].Count != 0 {
		t.Fatalf("steps %+v", r.Steps)
	}
	if r.Transitions != 5*20 {
		t.Fatalf("transitions %d", r.Transitions)
	}
	if !strings.Contains(r.Steps[5].FirstFailure, "deliverable broken") {
		t.Fatalf("first failure %q", r.Steps[5].FirstFailure)
	}
}

func TestJobGetAgainstFakeAPI(t *testing.T) {
	f := newFakeAPI()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "job-get", 400, 250*time.Millisecond)
	api := testAPI(t, srv.URL, cfg.Conns, cfg.Timeout)
	ph, _ := phaseIndex("negotiated")
	sc := &JobGet{API: api, Jobs: 25, Phase: ph, Concurrency: 4}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, j := range f.jobs {
		if j.state != ph {
			t.Fatalf("job in state %d, want %d", j.state, ph)
		}
	}
	r := Execute(context.Background(), sc, cfg)
	if r.Overall.Count != 100 || r.Overall.OK != 100 {
		t.Fatalf("%+v", r.Overall)
	}
	if r.Transitions != 0 || r.Iteration != nil {
		t.Fatalf("read scenario reported writes: %+v", r)
	}
}

// Through real HTTP: a server that handles one request at a time for 10ms,
// driven at twice its capacity, must show queueing in the latency.
func TestGet204CountsQueueingDelay(t *testing.T) {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		time.Sleep(10 * time.Millisecond)
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL+"/", "get204", 200, 500*time.Millisecond)
	sc := &Get204{API: testAPI(t, srv.URL, cfg.Conns, cfg.Timeout), Path: "/"}
	r := Execute(context.Background(), sc, cfg)
	if r.Overall.OK != 100 {
		t.Fatalf("%+v", r.Overall)
	}
	if r.Overall.Maxms < 300 {
		t.Fatalf("max %.1f ms: queueing delay not counted", r.Overall.Maxms)
	}
}

func TestCompareOutput(t *testing.T) {
	run := Report{Label: "agentlancer", Scenario: "job-get", RequestRateTarget: 100,
		Overall: Summary{PerSec: 100, OKPerSec: 100, P50ms: 2, P99ms: 8}}
	base := Report{Label: "nginx", Scenario: "get204", RequestRateTarget: 100,
		Overall: Summary{PerSec: 100, OKPerSec: 100, P50ms: 0.5, P99ms: 1}}
	var sb strings.Builder
	PrintCompare(&sb, "", run, base)
	if !strings.Contains(sb.String(), "4.00x") || !strings.Contains(sb.String(), "8.00x") {
		t.Fatal(sb.String())
	}
}

func TestTxGenUniqueAndWellFormed(t *testing.T) {
	g := NewTxGen()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := g.Next()
		if !txRe.MatchString(s) || seen[s] {
			t.Fatalf("bad/duplicate %q", s)
		}
		seen[s] = true
	}
	if NewTxGen().Next() == NewTxGen().Next() {
		t.Fatal("tx hashes repeat across runs")
	}
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]string{`{"id":42}`: "42", `{"id":"7"}`: "7", `{"job":{"id":9}}`: "9", `{"id":12345678901234567}`: "12345678901234567"} {
		if got, ok := parseID([]byte(in)); !ok || got != want {
			t.Errorf("%s -> %q %v", in, got, ok)
		}
	}
	for _, in := range []string{`{}`, `[]`, `{"id":null}`, `nope`} {
		if _, ok := parseID([]byte(in)); ok {
			t.Errorf("%s accepted", in)
		}
	}
}

// testAPI builds an API on the client selected by testClientKind
// (default fast); the tests also run the std client explicitly where it matters.
func testAPI(t *testing.T, raw string, conns int, timeout time.Duration) *API {
	t.Helper()
	return testAPIKind(t, testClientKind, raw, conns, timeout)
}

var testClientKind = "fast"

func testAPIKind(t *testing.T, kind, raw string, conns int, timeout time.Duration) *API {
	t.Helper()
	u, err := CheckLoopbackURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDoer(kind, u, conns, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return &API{Client: d}
}

// The scenarios must behave the same on the net/http client.
func TestScenariosWithStdClient(t *testing.T) {
	testClientKind = "std"
	defer func() { testClientKind = "fast" }()
	t.Run("provider-flow", TestProviderFlowAgainstFakeAPI)
	t.Run("job-get", TestJobGetAgainstFakeAPI)
	t.Run("setup-failure", TestProviderFlowSetupFailureShowsBody)
	t.Run("queueing", TestGet204CountsQueueingDelay)
	t.Run("thread-negotiation", TestThreadNegotiationAgainstFake)
	t.Run("thread-list", TestThreadListAgainstFake)
}
