package main

// Offer-service scenarios (docs/offer-service.md): offer-flow (one durable
// write per arrival, taking each pre-locked thread through create-offer ->
// accept) and contract-status (the public GET /api/contracts/{id}/tx-status).
// Both reuse the thread scenarios' setup: signupParties, the bench service,
// the quote with every term (USDC on base, a payable token) and lock-quote.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	offersPath    = "/api/agent/offers"
	contractsPath = "/api/contracts"
)

var (
	createOfferBody = []byte(`{}`)
	acceptBody      = []byte(`{"action":"accept"}`)
)

// ---------------------------------------------------------------- queues

// fifo is an unbounded, concurrency-safe FIFO (the offer-flow queue of offers
// waiting for their accept). It never makes a caller wait.
type fifo[T any] struct {
	mu   sync.Mutex
	buf  []T
	head int
}

func (q *fifo[T]) push(v T) {
	q.mu.Lock()
	q.buf = append(q.buf, v)
	q.mu.Unlock()
}

// pop takes the oldest element, if any.
func (q *fifo[T]) pop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if q.head == len(q.buf) {
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	return v, true
}

func (q *fifo[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) - q.head
}

// lockedThread is a thread the setup took to quote_locked (open -> quote with
// every term -> lock-quote), ready for its offer.
type lockedThread struct {
	party *ThreadParty
	id    string
}

// pendingOffer is an open offer waiting for its provider's accept.
type pendingOffer struct {
	party *ThreadParty
	id    string
}

// offerAction is what one offer-flow arrival does.
type offerAction int

const (
	actCreateOffer offerAction = iota // requester: POST /api/agent/threads/{id}/create-offer {}
	actAccept                         // provider:  POST /api/agent/offers/{id}/respond {"action":"accept"}
	actStarved                        // no offer waiting and no pre-locked thread left
)

var offerStepNames = []string{"create-offer", "accept"}

// offerSchedule hands out offer-flow's writes: the accept of the oldest offer
// waiting for one, else the create-offer of the next unused pre-locked thread.
// An offer is queued (offered) only after its create-offer answered 2xx, so
// the two writes of a thread never overlap, and nobody ever waits.
type offerSchedule struct {
	fresh   []lockedThread
	next    atomic.Int64 // index of the next unused fresh thread
	ready   fifo[pendingOffer]
	starved atomic.Int64 // arrivals that found neither
}

func newOfferSchedule(threads []lockedThread) *offerSchedule {
	return &offerSchedule{fresh: threads}
}

// take returns the next write: an offer to accept, or a thread to offer on.
func (s *offerSchedule) take() (offerAction, *lockedThread, pendingOffer) {
	if off, ok := s.ready.pop(); ok {
		return actAccept, nil, off
	}
	if i := s.next.Add(1) - 1; i < int64(len(s.fresh)) {
		return actCreateOffer, &s.fresh[i], pendingOffer{}
	}
	s.starved.Add(1)
	return actStarved, nil, pendingOffer{}
}

// offered queues an offer whose create-offer succeeded for its accept.
func (s *offerSchedule) offered(off pendingOffer) { s.ready.push(off) }

// unused is how many pre-locked threads were never offered on.
func (s *offerSchedule) unused() int {
	return max(0, len(s.fresh)-int(min(s.next.Load(), int64(len(s.fresh)))))
}

// lockedThreadsFor is how many locked threads offer-flow's setup makes for a
// run at rate writes/s over warmup+d: every thread takes two arrivals
// (create-offer, then accept), so rate × (warmup + d) / 2, plus 5 % and one
// second's arrivals for the offers still waiting at the end, and the threads
// whose create-offer failed (abandoned, never retried).
func lockedThreadsFor(rate float64, d, warmup time.Duration) int {
	n := ScheduleCount(rate, d) + ScheduleCount(rate, warmup)
	return int(math.Ceil(float64(n)/2*1.05 + rate))
}

// ---------------------------------------------------------------- setup helpers

// lockThreads opens n threads round-robin over parties and takes each to
// quote_locked (open -> quote with every term -> lock-quote), conc at a time
// (untimed). Thread i is on parties[i % len(parties)].
func lockThreads(ctx context.Context, api *API, parties []*ThreadParty, n, conc int) ([]lockedThread, error) {
	out := make([]lockedThread, n)
	err := forEachIndex(ctx, n, conc, func(ctx context.Context, i int) error {
		p := parties[i%len(parties)]
		id, err := api.SetupCreate(ctx, "POST", threadsPath, p.Requester.Key, p.openBody)
		if err != nil {
			return fmt.Errorf("thread %d of %d: %v", i+1, n, err)
		}
		if _, err := api.SetupCall(ctx, "POST", threadsPath+"/"+id+"/messages", p.Provider.Key, quoteBody); err != nil {
			return fmt.Errorf("thread %d of %d: %v", i+1, n, err)
		}
		if _, err := api.SetupCall(ctx, "POST", threadsPath+"/"+id+"/lock-quote", p.Provider.Key, lockBody); err != nil {
			return fmt.Errorf("thread %d of %d: %v", i+1, n, err)
		}
		out[i] = lockedThread{party: p, id: id}
		return nil
	})
	return out, err
}

// projectionPatience bounds how long the setup retries a create-offer that
// offer-service refuses because its projection of the threads has not caught
// up yet (404 "Thread not found", 409 quote_not_locked).
var projectionPatience = 60 * time.Second

// setupOffer creates the offer of a locked thread (untimed) and returns its
// id. A refusal that means "the projection is behind" is retried every 200 ms
// for up to projectionPatience; every other failure is returned at once.
func setupOffer(ctx context.Context, api *API, th lockedThread) (string, error) {
	path := threadsPath + "/" + th.id + "/create-offer"
	deadline := time.Now().Add(projectionPatience)
	for {
		status, rb, err := api.call(ctx, "POST", path, th.party.Requester.Key, createOfferBody, true)
		switch {
		case err != nil:
			return "", fmt.Errorf("POST %s: transport error: %v", path, err)
		case is2xx(status):
			id, ok := parseID(rb)
			if !ok {
				return "", fmt.Errorf("POST %s: 2xx but no \"id\" in: %s", path, excerpt(rb))
			}
			return id, nil
		case !projectionBehind(status, rb) || time.Now().After(deadline):
			return "", fmt.Errorf("POST %s: HTTP %d: %s", path, status, excerpt(rb))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// projectionBehind: create-offer's answer when offer-service has not yet seen
// the thread (404) or its lock (409 quote_not_locked).
func projectionBehind(status int, body []byte) bool {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &e)
	return status == 404 || (status == 409 && e.Code == "quote_not_locked")
}

// acceptOffer accepts an offer as its provider (untimed) and returns the id
// of the contract the accept created.
func acceptOffer(ctx context.Context, api *API, off pendingOffer) (string, error) {
	path := offersPath + "/" + off.id + "/respond"
	rb, err := api.SetupCall(ctx, "POST", path, off.party.Provider.Key, acceptBody)
	if err != nil {
		return "", err
	}
	var o struct {
		Status     string          `json:"status"`
		ContractID json.RawMessage `json:"contract_id"`
	}
	if json.Unmarshal(rb, &o) != nil || o.Status != "accepted" {
		return "", fmt.Errorf("POST %s: 2xx but the offer is not accepted: %s", path, excerpt(rb))
	}
	id, ok := jsonScalar(o.ContractID)
	if !ok {
		return "", fmt.Errorf("POST %s: 2xx but no contract_id in: %s", path, excerpt(rb))
	}
	return id, nil
}

// probeContract reads a contract's public monitor (untimed, no key) and
// checks that it awaits its payment.
func probeContract(ctx context.Context, api *API, contractID string) error {
	rb, err := api.SetupCall(ctx, "GET", contractsPath+"/"+contractID+"/tx-status", "", nil)
	if err != nil {
		return err
	}
	var c struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(rb, &c) != nil || c.Status != "awaiting_payment" {
		return fmt.Errorf("GET %s/%s/tx-status: 2xx but not awaiting_payment: %s", contractsPath, contractID, excerpt(rb))
	}
	return nil
}

// ---------------------------------------------------------------- offer-flow

var errNoLockedThread = errors.New("no pre-locked thread left (raise -locked-threads)")

// OfferFlow: setup signs up Pairs provider/requester pairs, publishes one
// service per provider and takes Threads threads (round-robin over the pairs)
// to quote_locked; then one probe thread goes through create-offer and accept.
// Each arrival is ONE durable write: the accept of the oldest offer waiting
// for one, or, when none is waiting, the create-offer of the next locked
// thread. An offer waits for its accept only after its create-offer answered
// 2xx (a failed write abandons the thread), so the writes of one thread never
// overlap and no arrival waits for another. At a sustainable rate the two
// kinds are half each. An arrival that finds no waiting offer and no unused
// thread (the setup made too few) is counted as an error of create-offer.
type OfferFlow struct {
	API         *API
	Pairs       int
	Threads     int // locked threads made by the setup (see lockedThreadsFor)
	Concurrency int

	parties []*ThreadParty
	sched   *offerSchedule
	noID    atomic.Int64 // 2xx create-offers whose offer id could not be read
}

func (o *OfferFlow) Name() string            { return "offer-flow" }
func (o *OfferFlow) Unit() string            { return "request" }
func (o *OfferFlow) RequestsPerArrival() int { return 1 }
func (o *OfferFlow) WritesPerArrival() int   { return 1 }
func (o *OfferFlow) NewMetrics() *Metrics {
	m := &Metrics{}
	for _, n := range offerStepNames {
		m.Steps = append(m.Steps, NewStep(n))
	}
	return m
}

func (o *OfferFlow) Describe() map[string]any {
	d := map[string]any{"pairs": o.Pairs, "locked_threads": o.Threads, "cycle": offerStepNames}
	if o.sched != nil {
		d["offers_waiting_at_end"] = o.sched.ready.Len()
		d["locked_threads_unused"] = o.sched.unused()
		if n := o.sched.starved.Load(); n > 0 {
			d["arrivals_without_locked_thread"] = n
		}
	}
	if n := o.noID.Load(); n > 0 {
		d["offers_without_id"] = n
	}
	return d
}

func (o *OfferFlow) Setup(ctx context.Context) error {
	if o.Pairs < 1 || o.Threads < 1 {
		return fmt.Errorf("-pairs and -locked-threads must be >= 1 (got %d and %d)", o.Pairs, o.Threads)
	}
	t0 := time.Now()
	parties, err := signupParties(ctx, o.API, o.Pairs, o.Concurrency)
	if err != nil {
		return err
	}
	o.parties = parties
	t1 := time.Now()
	// One more than asked: the last one made is the probe's.
	threads, err := lockThreads(ctx, o.API, parties, o.Threads+1, o.Concurrency)
	if err != nil {
		return err
	}
	t2 := time.Now()
	// Untimed probe on the last thread locked: offer-service's projection has
	// caught up with (nearly) all of the setup's threads once it answers.
	probe := threads[len(threads)-1]
	offerID, err := setupOffer(ctx, o.API, probe)
	if err != nil {
		return fmt.Errorf("probe create-offer: %v", err)
	}
	contractID, err := acceptOffer(ctx, o.API, pendingOffer{party: probe.party, id: offerID})
	if err != nil {
		return fmt.Errorf("probe accept: %v", err)
	}
	if err := probeContract(ctx, o.API, contractID); err != nil {
		return fmt.Errorf("probe contract: %v", err)
	}
	o.sched = newOfferSchedule(threads[:len(threads)-1])
	fmt.Fprintf(os.Stderr, "setup: %d provider/requester pairs, %d services in %.1fs; %d locked threads in %.1fs; probe create-offer -> accept -> contract tx-status ok in %.1fs\n",
		len(parties), len(parties), t1.Sub(t0).Seconds(), o.Threads, t2.Sub(t1).Seconds(), time.Since(t2).Seconds())
	return nil
}

func (o *OfferFlow) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	act, th, off := o.sched.take()
	switch act {
	case actAccept:
		o.API.Timed(ctx, m.Steps[actAccept], intended, "POST", offersPath+"/"+off.id+"/respond", off.party.Provider.Key, acceptBody, false)
	case actCreateOffer:
		out, rb, _ := o.API.Timed(ctx, m.Steps[actCreateOffer], intended, "POST", threadsPath+"/"+th.id+"/create-offer",
			th.party.Requester.Key, createOfferBody, true)
		if out.Err != nil || !is2xx(out.Status) {
			return // the thread is abandoned; the failure is in the step's figures
		}
		id, ok := parseID(rb)
		if !ok {
			o.noID.Add(1)
			return
		}
		o.sched.offered(pendingOffer{party: th.party, id: id})
	default:
		m.Steps[actCreateOffer].Add(Outcome{Err: errNoLockedThread, Detail: fmt.Sprintf("the setup made %d", o.Threads), NoLatency: true})
	}
}

// ---------------------------------------------------------------- contract-status

// ContractStatus reads contract monitors: setup signs up Pairs pairs (one
// service each), takes Contracts threads to quote_locked, then creates and
// accepts one offer on each (each accept creates a contract awaiting its
// payment). Each arrival is one public GET /api/contracts/{id}/tx-status (no
// key) of a random contract.
type ContractStatus struct {
	API         *API
	Pairs       int
	Contracts   int
	Concurrency int

	paths []string
}

func (c *ContractStatus) Name() string            { return "contract-status" }
func (c *ContractStatus) Unit() string            { return "request" }
func (c *ContractStatus) RequestsPerArrival() int { return 1 }
func (c *ContractStatus) WritesPerArrival() int   { return 0 }
func (c *ContractStatus) NewMetrics() *Metrics {
	return &Metrics{Steps: []*Step{NewStep("tx-status")}}
}
func (c *ContractStatus) Describe() map[string]any {
	return map[string]any{"pairs": c.Pairs, "contracts": c.Contracts, "contract_status": "awaiting_payment"}
}

// makeContracts offers on every thread and accepts each offer, conc at a
// time (untimed), and returns the contract ids in the threads' order.
func makeContracts(ctx context.Context, api *API, threads []lockedThread, conc int) ([]string, error) {
	ids := make([]string, len(threads))
	err := forEachIndex(ctx, len(threads), conc, func(ctx context.Context, i int) error {
		offerID, err := setupOffer(ctx, api, threads[i])
		if err != nil {
			return fmt.Errorf("contract %d of %d: %v", i+1, len(threads), err)
		}
		id, err := acceptOffer(ctx, api, pendingOffer{party: threads[i].party, id: offerID})
		if err != nil {
			return fmt.Errorf("contract %d of %d: %v", i+1, len(threads), err)
		}
		ids[i] = id
		return nil
	})
	return ids, err
}

func (c *ContractStatus) Setup(ctx context.Context) error {
	if c.Pairs < 1 || c.Contracts < 1 {
		return fmt.Errorf("-pairs and -contracts must be >= 1 (got %d and %d)", c.Pairs, c.Contracts)
	}
	t0 := time.Now()
	parties, err := signupParties(ctx, c.API, c.Pairs, c.Concurrency)
	if err != nil {
		return err
	}
	// All the locks first, then the offers: offer-service's projection of
	// the first threads has caught up by the time their offers are made.
	threads, err := lockThreads(ctx, c.API, parties, c.Contracts, c.Concurrency)
	if err != nil {
		return err
	}
	ids, err := makeContracts(ctx, c.API, threads, c.Concurrency)
	if err != nil {
		return err
	}
	c.paths = make([]string, len(ids))
	for i, id := range ids {
		c.paths[i] = contractsPath + "/" + id + "/tx-status"
	}
	if err := probeContract(ctx, c.API, ids[len(ids)-1]); err != nil {
		return fmt.Errorf("probe read: %v", err)
	}
	fmt.Fprintf(os.Stderr, "setup: %d provider/requester pairs, %d contracts (open -> quote -> lock -> create-offer -> accept) in %.1fs; probe tx-status ok\n",
		len(parties), len(ids), time.Since(t0).Seconds())
	return nil
}

func (c *ContractStatus) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	c.API.Timed(ctx, m.Steps[0], intended, "GET", c.paths[rand.IntN(len(c.paths))], "", nil, false)
}
