package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// API is a thin client for the agentlancer HTTP JSON API.
type API struct {
	Client Doer
	Prefix string // path prefix of the API ("" normally), no trailing slash
}

const excerptLen = 500

// excerpt renders a response body for a failure message.
func excerpt(b []byte) string {
	s := string(b)
	if len(s) > excerptLen {
		s = s[:excerptLen] + "...(truncated)"
	}
	s = strings.ReplaceAll(s, "\r", `\r`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	if s == "" {
		s = "<empty body>"
	}
	return s
}

func is2xx(status int) bool { return status >= 200 && status < 300 }

// Doer performs one HTTP request and reads the whole response. The body is
// returned when keep is set or the status is not 2xx; otherwise it is
// drained and discarded. A failure while reading the body is a transport
// error (status 0).
type Doer interface {
	Do(ctx context.Context, method, path, key string, body []byte, keep bool) (int, []byte, error)
}

func (a *API) call(ctx context.Context, method, path, key string, body []byte, keep bool) (int, []byte, error) {
	return a.Client.Do(ctx, method, a.Prefix+path, key, body, keep)
}

// StdDoer is the net/http implementation of Doer (-client std): slower, but
// the reference for FastClient.
type StdDoer struct {
	Client *http.Client
	Base   string // scheme://host:port
}

func (d *StdDoer) Do(ctx context.Context, method, path, key string, body []byte, keep bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.Base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", "agentlancer-loadgen")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out []byte
	if keep || !is2xx(resp.StatusCode) {
		out, err = io.ReadAll(io.LimitReader(resp.Body, maxKeep))
		if err != nil {
			return 0, out, err
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, out, err
	}
	return resp.StatusCode, out, nil
}

// Timed performs one request, records its outcome in st with latency
// measured from `from` (the intended start), and reports success (2xx).
func (a *API) Timed(ctx context.Context, st *Step, from time.Time, method, path, key string, body []byte, keep bool) (Outcome, []byte, time.Time) {
	status, rb, err := a.call(ctx, method, path, key, body, keep)
	end := time.Now()
	o := Outcome{Latency: end.Sub(from), Status: status, Err: err}
	if err != nil {
		o.Status = 0
		o.Detail = method + " " + path
	} else if !is2xx(status) {
		o.Detail = method + " " + path + ": " + excerpt(rb)
	}
	st.Add(o)
	return o, rb, end
}

// Agent is one signed-up API identity.
type Agent struct {
	ID  string
	Key string
}

// Pair is a client (buyer) and a provider agent.
type Pair struct {
	Client     Agent
	Provider   Agent
	createBody []byte // job creation body naming Provider
}

// jsonScalar renders a JSON string or number as a plain string.
func jsonScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) != nil {
		return "", false
	}
	return n.String(), true
}

// SetupCall performs one untimed (setup) request and returns the body of its
// 2xx answer; a transport error or any other status is an error naming the
// call, with the status and the response body.
func (a *API) SetupCall(ctx context.Context, method, path, key string, body []byte) ([]byte, error) {
	status, rb, err := a.call(ctx, method, path, key, body, true)
	if err != nil {
		return nil, fmt.Errorf("%s %s: transport error: %v", method, path, err)
	}
	if !is2xx(status) {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, excerpt(rb))
	}
	return rb, nil
}

// SetupCreate is SetupCall for a call that creates a resource: it returns the
// "id" of the answer.
func (a *API) SetupCreate(ctx context.Context, method, path, key string, body []byte) (string, error) {
	rb, err := a.SetupCall(ctx, method, path, key, body)
	if err != nil {
		return "", err
	}
	id, ok := parseID(rb)
	if !ok {
		return "", fmt.Errorf("%s %s: 2xx but no \"id\" in: %s", method, path, excerpt(rb))
	}
	return id, nil
}

// Signup registers one agent (untimed; setup only).
func (a *API) Signup(ctx context.Context, name string) (Agent, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	const path = "/api/agent/signup"
	rb, err := a.SetupCall(ctx, "POST", path, "", body)
	if err != nil {
		return Agent{}, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rb, &m); err != nil {
		return Agent{}, fmt.Errorf("POST %s: 2xx but body is not a JSON object: %s", path, excerpt(rb))
	}
	id, ok1 := jsonScalar(m["agent_id"])
	key, ok2 := jsonScalar(m["api_key"])
	if !ok1 || !ok2 {
		return Agent{}, fmt.Errorf("POST %s: 2xx but no agent_id/api_key in: %s", path, excerpt(rb))
	}
	return Agent{ID: id, Key: key}, nil
}

// SignupPair signs up a client and a provider.
func (a *API) SignupPair(ctx context.Context, i int) (Pair, error) {
	c, err := a.Signup(ctx, fmt.Sprintf("bench-client-%d", i))
	if err != nil {
		return Pair{}, err
	}
	p, err := a.Signup(ctx, fmt.Sprintf("bench-provider-%d", i))
	if err != nil {
		return Pair{}, err
	}
	body, _ := json.Marshal(map[string]string{
		"providerId":         p.ID,
		"serviceRequirement": "bench",
		"budget":             "10",
		"tokenAddress":       "0x1111111111111111111111111111111111111111",
	})
	return Pair{Client: c, Provider: p, createBody: body}, nil
}

// parseID extracts the "id" of a created resource (a job, a service, a
// thread; number or string); it also accepts a {"job":{"id":...}} wrapper.
func parseID(b []byte) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "", false
	}
	if id, ok := jsonScalar(m["id"]); ok {
		return id, true
	}
	if inner, ok := m["job"]; ok {
		return parseID(inner)
	}
	return "", false
}

// TxGen makes unique 0x-prefixed 64-hex-digit transaction hashes: a random
// per-process tag (16 hex) followed by a 48-hex counter.
type TxGen struct {
	tag string
	n   atomic.Uint64
}

func NewTxGen() *TxGen {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		binaryTime := uint64(time.Now().UnixNano())
		for i := range b {
			b[i] = byte(binaryTime >> (8 * i))
		}
	}
	return &TxGen{tag: hex.EncodeToString(b[:])}
}

func (t *TxGen) Next() string {
	return fmt.Sprintf("0x%s%048x", t.tag, t.n.Add(1))
}

// transition is one state-changing call of the job life cycle.
type transition struct {
	name       string
	asProvider bool   // use the provider's key (else the client's)
	pathFmt    string // %s = job id
	body       func(tx *TxGen) []byte
}

func staticBody(s string) func(*TxGen) []byte {
	b := []byte(s)
	return func(*TxGen) []byte { return b }
}

// Transitions after job creation, in life-cycle order.
var transitions = []transition{
	{"accept", true, "/api/agents/providers/jobs/%s/accept", staticBody(`{"accept":true}`)},
	{"escrow", false, "/api/agents/jobs/%s/escrow", func(tx *TxGen) []byte {
		return []byte(`{"txHash":"` + tx.Next() + `"}`)
	}},
	{"negotiation", true, "/api/agents/providers/jobs/%s/negotiation", staticBody(`{"accept":true,"content":"ok"}`)},
	{"requirement", true, "/api/agents/providers/jobs/%s/requirement", staticBody(`{"content":"details"}`)},
	{"deliverable", true, "/api/agents/providers/jobs/%s/deliverable", staticBody(`{"deliverable":"done"}`)},
	{"evaluate", false, "/api/agents/jobs/%s/evaluate", staticBody(`{"accept":true}`)},
}

// Phases a job can be left in by the job-get setup: phase k means "created,
// then the first k transitions applied".
var phaseNames = []string{"created", "accepted", "escrowed", "negotiated", "requirement", "delivered", "evaluated"}

func phaseIndex(name string) (int, error) {
	for i, n := range phaseNames {
		if n == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown phase %q (want one of %s)", name, strings.Join(phaseNames, ", "))
}

// FlowStepNames are the step names of one walk-through: create + transitions.
func FlowStepNames() []string {
	names := []string{"create"}
	for _, t := range transitions {
		names = append(names, t.name)
	}
	return names
}

var errNoJobID = errors.New("create response has no job id")

// Walk creates a job for p and applies the first upto transitions, recording
// each call in steps[0] (create) and steps[1+k] (transition k). The first
// call's latency is measured from `from` (the intended start); each later
// call's from the end of the previous one. It stops at the first failure and
// returns it (nil on success), the job id (if created) and the end time.
func (a *API) Walk(ctx context.Context, tx *TxGen, p *Pair, from time.Time, upto int, steps []*Step) (string, *Outcome, time.Time) {
	o, rb, end := a.Timed(ctx, steps[0], from, "POST", "/api/agents/jobs", p.Client.Key, p.createBody, true)
	if o.Err != nil || !is2xx(o.Status) {
		o.Detail = "create: " + o.Detail
		return "", &o, end
	}
	id, ok := parseID(rb)
	if !ok {
		f := Outcome{Err: errNoJobID, Detail: "create: HTTP " + fmt.Sprint(o.Status) + ": " + excerpt(rb)}
		return "", &f, end
	}
	for k := 0; k < upto && k < len(transitions); k++ {
		t := transitions[k]
		key := p.Client.Key
		if t.asProvider {
			key = p.Provider.Key
		}
		o, _, end = a.Timed(ctx, steps[1+k], end, "POST", fmt.Sprintf(t.pathFmt, id), key, t.body(tx), false)
		if o.Err != nil || !is2xx(o.Status) {
			o.Detail = t.name + ": " + o.Detail
			return id, &o, end
		}
	}
	return id, nil, end
}
