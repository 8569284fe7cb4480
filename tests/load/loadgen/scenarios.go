package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Metrics is one set of recorders for a run (a fresh set is used for warm-up
// so that warm-up samples are discarded).
type Metrics struct {
	Steps []*Step // per HTTP step, in order
	Iter  *Step   // whole iteration (multi-step scenarios only)
}

// Scenario is a workload: an untimed Setup, then one Arrival per scheduled
// arrival of the open-model schedule.
type Scenario interface {
	Name() string
	Unit() string            // what one arrival is: "request" or "iteration"
	RequestsPerArrival() int // HTTP calls per successful arrival
	WritesPerArrival() int   // state-changing (durable) calls per successful arrival
	Setup(ctx context.Context) error
	NewMetrics() *Metrics
	Arrival(ctx context.Context, m *Metrics, intended time.Time)
	Describe() map[string]any
}

// ---------------------------------------------------------------- get204

// Get204 GETs one URL (nginx baseline: `return 204`).
type Get204 struct {
	API  *API
	Path string
}

func (g *Get204) Name() string                    { return "get204" }
func (g *Get204) Unit() string                    { return "request" }
func (g *Get204) RequestsPerArrival() int         { return 1 }
func (g *Get204) WritesPerArrival() int           { return 0 }
func (g *Get204) Describe() map[string]any        { return map[string]any{"path": g.Path} }
func (g *Get204) NewMetrics() *Metrics            { return &Metrics{Steps: []*Step{NewStep("GET")}} }
func (g *Get204) Setup(ctx context.Context) error { return nil }
func (g *Get204) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	g.API.Timed(ctx, m.Steps[0], intended, "GET", g.Path, "", nil, false)
}

// ---------------------------------------------------------------- job-get

// JobGet reads existing jobs: setup signs up one client/provider pair and
// creates Jobs jobs advanced to Phase; each arrival is one authenticated
// GET /api/agents/jobs/{id}, round-robin over the jobs.
type JobGet struct {
	API         *API
	Jobs        int
	Phase       int
	Concurrency int

	tx    *TxGen
	key   string
	paths []string
	next  atomic.Uint64
}

func (j *JobGet) Name() string            { return "job-get" }
func (j *JobGet) Unit() string            { return "request" }
func (j *JobGet) RequestsPerArrival() int { return 1 }
func (j *JobGet) WritesPerArrival() int   { return 0 }
func (j *JobGet) NewMetrics() *Metrics    { return &Metrics{Steps: []*Step{NewStep("get-job")}} }
func (j *JobGet) Describe() map[string]any {
	return map[string]any{"jobs": j.Jobs, "phase": phaseNames[j.Phase]}
}

func (j *JobGet) Setup(ctx context.Context) error {
	if j.Jobs < 1 {
		return fmt.Errorf("-jobs must be >= 1")
	}
	j.tx = NewTxGen()
	pair, err := j.API.SignupPair(ctx, 0)
	if err != nil {
		return fmt.Errorf("signup: %v", err)
	}
	j.key = pair.Client.Key
	t0 := time.Now()
	ids, err := createJobs(ctx, j.API, j.tx, []*Pair{&pair}, j.Jobs, j.Phase, j.Concurrency)
	if err != nil {
		return err
	}
	j.paths = make([]string, len(ids))
	for i, id := range ids {
		j.paths[i] = "/api/agents/jobs/" + id
	}
	fmt.Fprintf(os.Stderr, "setup: created %d jobs in phase %q in %.1fs\n", len(ids), phaseNames[j.Phase], time.Since(t0).Seconds())
	// One untimed read to fail early and clearly.
	st := NewStep("probe")
	o, _, _ := j.API.Timed(ctx, st, time.Now(), "GET", j.paths[0], j.key, nil, false)
	if o.Err != nil || !is2xx(o.Status) {
		return fmt.Errorf("probe read failed: %s", st.FirstFailure())
	}
	return nil
}

func (j *JobGet) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	i := (j.next.Add(1) - 1) % uint64(len(j.paths))
	j.API.Timed(ctx, m.Steps[0], intended, "GET", j.paths[i], j.key, nil, false)
}

// createJobs creates n jobs round-robin over pairs, each advanced through the
// first `phase` transitions, with `conc` workers. Untimed (setup).
func createJobs(ctx context.Context, api *API, tx *TxGen, pairs []*Pair, n, phase, conc int) ([]string, error) {
	ids := make([]string, n)
	err := forEachIndex(ctx, n, conc, func(ctx context.Context, i int) error {
		steps := make([]*Step, 1+len(transitions))
		for k := range steps {
			steps[k] = NewStep("setup")
		}
		id, fail, _ := api.Walk(ctx, tx, pairs[i%len(pairs)], time.Now(), phase, steps)
		if fail != nil {
			return fmt.Errorf("creating job %d of %d: %s", i+1, n, describeFailure(fail))
		}
		ids[i] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func describeFailure(o *Outcome) string {
	if o.Err != nil {
		return fmt.Sprintf("transport error: %v (%s)", o.Err, o.Detail)
	}
	return fmt.Sprintf("HTTP %d: %s", o.Status, o.Detail)
}

// ---------------------------------------------------------------- provider-flow

// ProviderFlow: each arrival is one whole job walk-through (create + every
// transition) by one of Pairs pre-signed-up client/provider pairs.
type ProviderFlow struct {
	API   *API
	Pairs int

	tx    *TxGen
	pairs []*Pair
	next  atomic.Uint64
}

func (p *ProviderFlow) Name() string            { return "provider-flow" }
func (p *ProviderFlow) Unit() string            { return "iteration" }
func (p *ProviderFlow) RequestsPerArrival() int { return 1 + len(transitions) }
func (p *ProviderFlow) WritesPerArrival() int   { return 1 + len(transitions) }
func (p *ProviderFlow) Describe() map[string]any {
	return map[string]any{"pairs": p.Pairs, "steps": FlowStepNames()}
}

func (p *ProviderFlow) NewMetrics() *Metrics {
	m := &Metrics{Iter: NewStep("iteration")}
	for _, n := range FlowStepNames() {
		m.Steps = append(m.Steps, NewStep(n))
	}
	return m
}

func (p *ProviderFlow) Setup(ctx context.Context) error {
	if p.Pairs < 1 {
		return fmt.Errorf("-pairs must be >= 1")
	}
	p.tx = NewTxGen()
	for i := 0; i < p.Pairs; i++ {
		pair, err := p.API.SignupPair(ctx, i)
		if err != nil {
			return fmt.Errorf("signup of pair %d: %v", i, err)
		}
		p.pairs = append(p.pairs, &pair)
	}
	// One untimed walk-through to fail early and clearly.
	m := p.NewMetrics()
	if _, fail, _ := p.API.Walk(ctx, p.tx, p.pairs[0], time.Now(), len(transitions), m.Steps); fail != nil {
		return fmt.Errorf("probe walk-through failed at %s", describeFailure(fail))
	}
	fmt.Fprintf(os.Stderr, "setup: %d agent pairs signed up, probe walk-through ok\n", len(p.pairs))
	return nil
}

func (p *ProviderFlow) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	pair := p.pairs[(p.next.Add(1)-1)%uint64(len(p.pairs))]
	_, fail, end := p.API.Walk(ctx, p.tx, pair, intended, len(transitions), m.Steps)
	if fail == nil {
		m.Iter.Add(Outcome{Latency: end.Sub(intended), Status: 200})
		return
	}
	m.Iter.Add(Outcome{Status: fail.Status, Err: fail.Err, Detail: fail.Detail, NoLatency: true})
}

// ---------------------------------------------------------------- job-create

// JobCreate: each arrival is one POST /api/agents/jobs (one durable write: the
// job and its job.created event) by one of Pairs pre-signed-up pairs.
type JobCreate struct {
	API   *API
	Pairs int

	pairs []*Pair
	next  atomic.Uint64
}

func (j *JobCreate) Name() string             { return "job-create" }
func (j *JobCreate) Unit() string             { return "request" }
func (j *JobCreate) RequestsPerArrival() int  { return 1 }
func (j *JobCreate) WritesPerArrival() int    { return 1 }
func (j *JobCreate) Describe() map[string]any { return map[string]any{"pairs": j.Pairs} }
func (j *JobCreate) NewMetrics() *Metrics     { return &Metrics{Steps: []*Step{NewStep("create-job")}} }

func (j *JobCreate) Setup(ctx context.Context) error {
	if j.Pairs < 1 {
		return fmt.Errorf("-pairs must be >= 1")
	}
	for i := 0; i < j.Pairs; i++ {
		pair, err := j.API.SignupPair(ctx, i)
		if err != nil {
			return fmt.Errorf("signup of pair %d: %v", i, err)
		}
		j.pairs = append(j.pairs, &pair)
	}
	m := j.NewMetrics()
	if _, fail, _ := j.API.Walk(ctx, nil, j.pairs[0], time.Now(), 0, m.Steps); fail != nil {
		return fmt.Errorf("probe create failed: %s", describeFailure(fail))
	}
	fmt.Fprintf(os.Stderr, "setup: %d agent pairs signed up, probe create ok\n", len(j.pairs))
	return nil
}

func (j *JobCreate) Arrival(ctx context.Context, m *Metrics, intended time.Time) {
	pair := j.pairs[(j.next.Add(1)-1)%uint64(len(j.pairs))]
	j.API.Walk(ctx, nil, pair, intended, 0, m.Steps)
}
