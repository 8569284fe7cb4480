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

// fakeOffers adds the offer-service routes the offer scenarios use to
// fakeThreads (which serves signup, services and threads), strictly enough to
// catch a scenario that writes out of order: an offer on a thread that is not
// quote_locked or already offered, an offer by the provider, an accept by the
// requester, an accept twice (the real service answers 200 unchanged; the fake
// refuses, to catch it) all fail.
type fakeOffers struct {
	*fakeThreads
	offers        map[string]*fakeOffer
	contracts     map[string]int // contract id -> tx-status reads
	offerWrites   int
	failAccept    int      // answer respond with this status (0: normal)
	behind        int      // answer this many create-offers 404 "Thread not found" first (projection lag)
	acceptedFirst []string // offers accepted, in order
}

type fakeOffer struct {
	thread, requester, provider, status, contract string
}

var offerPathRe = regexp.MustCompile(`^/api/agent/(threads/(thr_[0-9]+)/create-offer|offers/(off_[0-9]+)/respond)$`)
var contractPathRe = regexp.MustCompile(`^/api/contracts/(ctr_[0-9]+)/tx-status$`)

func newFakeOffers() *fakeOffers {
	return &fakeOffers{fakeThreads: newFakeThreads(), offers: map[string]*fakeOffer{}, contracts: map[string]int{}}
}

func (f *fakeOffers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	om := offerPathRe.FindStringSubmatch(r.URL.Path)
	cm := contractPathRe.FindStringSubmatch(r.URL.Path)
	if om == nil && cm == nil {
		f.fakeThreads.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(code int, msg, codeName string) {
		reply(code, map[string]string{"error": msg, "code": codeName})
	}
	if cm != nil {
		if r.Method != "GET" || r.Header.Get("x-api-key") != "" {
			fail(400, "the monitor is a public GET", "bad")
			return
		}
		if _, ok := f.contracts[cm[1]]; !ok {
			fail(404, "Contract not found", "not_found")
			return
		}
		f.contracts[cm[1]]++
		reply(200, map[string]any{"status": "awaiting_payment", "amount": "25", "token": "USDC", "network": "base"})
		return
	}
	var body map[string]any
	if r.Method != "POST" || json.NewDecoder(r.Body).Decode(&body) != nil {
		fail(400, "want a POST with a JSON object", "validation_error")
		return
	}
	me, ok := f.agents[r.Header.Get("x-api-key")]
	if !ok {
		fail(401, "Invalid API key", "unauthorized")
		return
	}
	if om[2] != "" { // create-offer
		if f.behind > 0 {
			f.behind--
			fail(404, "Thread not found", "not_found")
			return
		}
		th := f.threads[om[2]]
		if th == nil {
			fail(404, "Thread not found", "not_found")
			return
		}
		if len(body) != 0 {
			fail(400, "body must be {}", "validation_error")
			return
		}
		if me != th.requester {
			fail(403, "Only the requester can create the offer", "forbidden")
			return
		}
		if th.status != "quote_locked" {
			fail(409, "Quote is not locked (or already offered)", "quote_not_locked")
			return
		}
		th.status = "offered"
		f.nextID++
		id := fmt.Sprintf("off_%d", f.nextID)
		f.offers[id] = &fakeOffer{thread: om[2], requester: th.requester, provider: th.provider, status: "open"}
		f.offerWrites++
		reply(201, map[string]any{"id": id, "thread_id": om[2], "status": "open", "contract_id": nil})
		return
	}
	off := f.offers[om[3]]
	if off == nil {
		fail(404, "Offer not found", "not_found")
		return
	}
	if me != off.provider {
		fail(403, "Only the provider can respond to this offer", "forbidden")
		return
	}
	if body["action"] != "accept" {
		fail(400, "want accept", "validation_error")
		return
	}
	if f.failAccept != 0 {
		fail(f.failAccept, "accept broken", "broken")
		return
	}
	if off.status != "open" {
		fail(409, "accepted twice", "conflict")
		return
	}
	off.status = "accepted"
	f.nextID++
	off.contract = fmt.Sprintf("ctr_%d", f.nextID)
	f.contracts[off.contract] = 0
	f.offerWrites++
	f.acceptedFirst = append(f.acceptedFirst, om[3])
	reply(200, map[string]any{"id": om[3], "status": "accepted", "contract_id": off.contract,
		"contract": map[string]any{"status": "awaiting_payment"}})
}

func (f *fakeOffers) count(status string) (n int) {
	for _, o := range f.offers {
		if o.status == status {
			n++
		}
	}
	return n
}

func TestOfferFlowAgainstFake(t *testing.T) {
	f := newFakeOffers()
	f.behind = 2 // the probe's create-offer finds the projection behind twice, then succeeds
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "offer-flow", 400, 500*time.Millisecond)
	threads := lockedThreadsFor(cfg.Rate, cfg.Duration, cfg.Warmup)
	sc := &OfferFlow{API: testAPI(t, srv.URL, cfg.Conns, cfg.Timeout), Pairs: 3, Threads: threads, Concurrency: 4}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Setup: threads+1 locked threads (the last one is the probe's, offered and accepted).
	if len(f.threads) != threads+1 || len(f.offers) != 1 || f.count("accepted") != 1 || f.contracts[f.offers[f.acceptedFirst[0]].contract] != 1 {
		t.Fatalf("setup: %d threads (want %d), %d offers, contracts %v", len(f.threads), threads+1, len(f.offers), f.contracts)
	}
	if f.behind != 0 {
		t.Fatalf("the probe did not retry the projection's 404s (%d left)", f.behind)
	}
	r := Execute(context.Background(), sc, cfg)
	if r.Overall.Count != 200 || r.Overall.OK != 200 || r.Transitions != 200 || r.WritesPerArrival != 1 {
		t.Fatalf("overall %+v transitions %d", r.Overall, r.Transitions)
	}
	create, accept := r.Steps[0], r.Steps[1]
	if create.Name != "create-offer" || accept.Name != "accept" {
		t.Fatalf("steps %v %v", create.Name, accept.Name)
	}
	// Every offer is accepted after it was created: accepts never outnumber creates, and only the
	// offers still waiting at the end (a few at most at this rate) lack their accept.
	if accept.OK > create.OK || create.OK-accept.OK > 5 || accept.OK < 95 {
		t.Fatalf("create-offer/accept = %d/%d", create.OK, accept.OK)
	}
	if len(f.offers) != int(create.OK)+1 || f.count("accepted") != int(accept.OK)+1 || f.offerWrites != len(f.offers)+f.count("accepted") {
		t.Fatalf("server: %d offers, %d accepted; client: %d creates, %d accepts", len(f.offers), f.count("accepted"), create.OK, accept.OK)
	}
	d := sc.Describe()
	if d["offers_waiting_at_end"] != int(create.OK-accept.OK) || d["locked_threads_unused"] != threads-int(create.OK) || d["arrivals_without_locked_thread"] != nil {
		t.Fatalf("describe %v", d)
	}
	// The offers spread over the pairs.
	perRequester := map[string]int{}
	for _, o := range f.offers {
		perRequester[o.requester]++
	}
	if len(perRequester) != 3 {
		t.Fatalf("offers per requester %v", perRequester)
	}
}

func TestOfferFlowAcceptFailuresAndStarvation(t *testing.T) {
	f := newFakeOffers()
	srv := httptest.NewServer(f)
	defer srv.Close()
	sc := &OfferFlow{API: testAPI(t, srv.URL, 8, time.Second), Pairs: 2, Threads: 40, Concurrency: 2}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.failAccept = 409
	f.mu.Unlock()
	// 150 arrivals, 40 threads: each thread takes a create-offer and a (failing) accept, then the
	// threads run out and the remaining ~70 arrivals are counted as create-offer errors.
	r := Execute(context.Background(), sc, testConfig(srv.URL, "offer-flow", 300, 500*time.Millisecond))
	create, accept := r.Steps[0], r.Steps[1]
	if create.OK != 40 || accept.OK != 0 || accept.Non2xx != 40 || accept.Non2xxByStatus[409] != 40 {
		t.Fatalf("steps %+v", r.Steps)
	}
	if create.Errors != 150-80 || create.Count != 150-40 || create.Samples != 40 || r.Transitions != 40 {
		t.Fatalf("create-offer %+v transitions %d", create, r.Transitions)
	}
	if d := sc.Describe(); d["arrivals_without_locked_thread"] != int64(70) || d["locked_threads_unused"] != 0 || d["offers_waiting_at_end"] != 0 {
		t.Fatalf("describe %v", d)
	}
	var sb strings.Builder
	PrintTable(&sb, r)
	for _, want := range []string{"[accept] 409 x 40", "first failure [accept]: HTTP 409", "accept broken",
		"first failure [create-offer]: transport error: no pre-locked thread left (raise -locked-threads) (the setup made 40)"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, sb.String())
		}
	}
	sb.Reset()
	PrintCompare(&sb, "", r, Report{})
	for _, want := range []string{"  create-offer 2xx/s", "  accept 2xx/s"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("compare lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestOfferFlowSetupFailures(t *testing.T) {
	old := projectionPatience
	projectionPatience = 300 * time.Millisecond
	defer func() { projectionPatience = old }()
	f := newFakeOffers()
	f.behind = 1 << 30 // the projection never catches up
	srv := httptest.NewServer(f)
	defer srv.Close()
	err := (&OfferFlow{API: testAPI(t, srv.URL, 2, time.Second), Pairs: 1, Threads: 2}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "probe create-offer") || !strings.Contains(err.Error(), "HTTP 404") ||
		!strings.Contains(err.Error(), "Thread not found") {
		t.Fatalf("err = %v", err)
	}
	f2 := newFakeOffers()
	f2.failAccept = 500
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	err = (&OfferFlow{API: testAPI(t, srv2.URL, 2, time.Second), Pairs: 1, Threads: 2}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "probe accept") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
	// A refusal that is not the projection's is not retried.
	f3 := newFakeOffers()
	srv3 := httptest.NewServer(f3)
	defer srv3.Close()
	api := testAPI(t, srv3.URL, 2, time.Second)
	parties, err := signupParties(context.Background(), api, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	th, err := lockThreads(context.Background(), api, parties, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong := lockedThread{party: &ThreadParty{Requester: parties[0].Provider}, id: th[0].id}
	t0 := time.Now()
	if _, err := setupOffer(context.Background(), api, wrong); err == nil || !strings.Contains(err.Error(), "HTTP 403") || time.Since(t0) > 100*time.Millisecond {
		t.Fatalf("err = %v after %v", err, time.Since(t0))
	}
	if err := (&OfferFlow{API: api, Pairs: 1, Threads: 0}).Setup(context.Background()); err == nil {
		t.Fatal("0 threads accepted")
	}
}

func TestContractStatusAgainstFake(t *testing.T) {
	f := newFakeOffers()
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL, "contract-status", 400, 500*time.Millisecond)
	sc := &ContractStatus{API: testAPI(t, srv.URL, cfg.Conns, cfg.Timeout), Pairs: 4, Contracts: 25, Concurrency: 5}
	if err := sc.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.contracts) != 25 || f.count("accepted") != 25 || len(f.threads) != 25 {
		t.Fatalf("setup: %d contracts, %d accepted offers, %d threads", len(f.contracts), f.count("accepted"), len(f.threads))
	}
	f.mu.Lock()
	for id := range f.contracts {
		f.contracts[id] = 0 // forget the probe read
	}
	f.mu.Unlock()
	r := Execute(context.Background(), sc, cfg)
	if len(r.Steps) != 1 || r.Steps[0].Name != "tx-status" || r.Overall.OK != 200 || r.Overall.Non2xx+r.Overall.Errors != 0 || r.Transitions != 0 {
		t.Fatalf("steps %+v overall %+v", r.Steps, r.Overall)
	}
	read, total := 0, 0
	for _, n := range f.contracts {
		total += n
		if n > 0 {
			read++
		}
	}
	if total != 200 || read < 20 { // 200 random reads over 25 contracts
		t.Fatalf("%d reads over %d contracts", total, read)
	}
}

func TestContractStatusSetupFailure(t *testing.T) {
	f := newFakeOffers()
	f.failAccept = 422
	srv := httptest.NewServer(f)
	defer srv.Close()
	err := (&ContractStatus{API: testAPI(t, srv.URL, 2, time.Second), Pairs: 1, Contracts: 3, Concurrency: 2}).Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/respond: HTTP 422") || !strings.Contains(err.Error(), "accept broken") {
		t.Fatalf("err = %v", err)
	}
}

// The schedule: accepts first (oldest offer first), else the next fresh thread; an offer is
// accepted only after it was offered; starvation is counted, never blocks.
func TestOfferSchedule(t *testing.T) {
	p := &ThreadParty{}
	threads := make([]lockedThread, 3)
	for i := range threads {
		threads[i] = lockedThread{party: p, id: fmt.Sprintf("thr_%d", i)}
	}
	s := newOfferSchedule(threads)
	act, th, _ := s.take()
	if act != actCreateOffer || th.id != "thr_0" {
		t.Fatalf("1st take: %v %v", act, th)
	}
	act, th, _ = s.take() // thr_0's create-offer still in flight: next thread
	if act != actCreateOffer || th.id != "thr_1" {
		t.Fatalf("2nd take: %v %v", act, th)
	}
	s.offered(pendingOffer{party: p, id: "off_1"}) // thr_1's answered first
	s.offered(pendingOffer{party: p, id: "off_0"})
	if act, _, off := s.take(); act != actAccept || off.id != "off_1" {
		t.Fatalf("3rd take: %v %v", act, off)
	}
	if act, _, off := s.take(); act != actAccept || off.id != "off_0" {
		t.Fatalf("4th take: %v %v", act, off)
	}
	if act, th, _ := s.take(); act != actCreateOffer || th.id != "thr_2" || s.unused() != 0 {
		t.Fatalf("5th take: %v %v unused %d", act, th, s.unused())
	}
	for i := 0; i < 3; i++ {
		if act, _, _ := s.take(); act != actStarved {
			t.Fatalf("take after the last thread: %v", act)
		}
	}
	if s.starved.Load() != 3 || s.unused() != 0 {
		t.Fatalf("starved %d unused %d", s.starved.Load(), s.unused())
	}
	s.offered(pendingOffer{party: p, id: "off_2"}) // a late offer is still accepted
	if act, _, off := s.take(); act != actAccept || off.id != "off_2" {
		t.Fatalf("late accept: %v %v", act, off)
	}
}

// Many concurrent arrivals: every thread is offered exactly once, every offer accepted exactly
// once, and no accept is handed out before its offer was queued.
func TestOfferScheduleConcurrent(t *testing.T) {
	const n = 5000
	threads := make([]lockedThread, n)
	for i := range threads {
		threads[i] = lockedThread{id: fmt.Sprint(i)}
	}
	s := newOfferSchedule(threads)
	var mu sync.Mutex
	offered, accepted := map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				act, th, off := s.take()
				switch act {
				case actCreateOffer:
					mu.Lock()
					offered[th.id]++
					mu.Unlock()
					s.offered(pendingOffer{id: th.id})
				case actAccept:
					mu.Lock()
					if offered[off.id] != 1 {
						t.Errorf("accept of %s before its offer", off.id)
					}
					accepted[off.id]++
					mu.Unlock()
				default:
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(offered) != n || len(accepted) != n || s.ready.Len() != 0 {
		t.Fatalf("offered %d accepted %d waiting %d", len(offered), len(accepted), s.ready.Len())
	}
	for id, k := range offered {
		if k != 1 || accepted[id] != 1 {
			t.Fatalf("thread %s offered %d accepted %d", id, k, accepted[id])
		}
	}
}

func TestFIFO(t *testing.T) {
	var q fifo[int]
	if _, ok := q.pop(); ok {
		t.Fatal("empty queue popped")
	}
	want := 0
	for i := 0; i < 5000; i++ { // across the compaction threshold
		q.push(i)
		if i%3 == 2 {
			if v, ok := q.pop(); !ok || v != want {
				t.Fatalf("pop %d: %v %v", want, v, ok)
			}
			want++
		}
	}
	if q.Len() != 5000-want {
		t.Fatalf("len %d want %d", q.Len(), 5000-want)
	}
	for ; want < 5000; want++ {
		if v, ok := q.pop(); !ok || v != want {
			t.Fatalf("pop %d: %v %v", want, v, ok)
		}
	}
	if _, ok := q.pop(); ok || q.Len() != 0 {
		t.Fatal("queue not empty")
	}
}

func TestLockedThreadsFor(t *testing.T) {
	for _, c := range []struct {
		rate      float64
		d, warmup time.Duration
		want      int
	}{
		{3000, 20 * time.Second, 2 * time.Second, 37650}, // 66,000 arrivals / 2 × 1.05 + 3,000
		{300, 5 * time.Second, 2 * time.Second, 1403},    // 2,100 / 2 × 1.05 = 1,102.5 -> 1,103, + 300
		{400, 500 * time.Millisecond, 0, 505},
	} {
		if got := lockedThreadsFor(c.rate, c.d, c.warmup); got != c.want {
			t.Fatalf("%v/s for %v + %v: %d, want %d", c.rate, c.d, c.warmup, got, c.want)
		}
	}
}

func TestOfferBodies(t *testing.T) {
	var a map[string]string
	if err := json.Unmarshal(acceptBody, &a); err != nil || a["action"] != "accept" || len(a) != 1 {
		t.Fatalf("%s %v", acceptBody, err)
	}
	if string(createOfferBody) != "{}" {
		t.Fatalf("create-offer body %s", createOfferBody)
	}
	// The quote's token must be payable (docs/offer-service.md, Tokens): USDC on base.
	budget, _ := benchTerms["budget"].(map[string]string)
	if budget["token"] != "USDC" || budget["network"] != "base" {
		t.Fatalf("budget %v", budget)
	}
	if !projectionBehind(404, []byte(`{"error":"Thread not found","code":"not_found"}`)) ||
		!projectionBehind(409, []byte(`{"code":"quote_not_locked"}`)) ||
		projectionBehind(409, []byte(`{"code":"offer_exists"}`)) || projectionBehind(403, nil) {
		t.Fatal("projectionBehind")
	}
}
