package main

// The webhook receiver of `loadgen webhooks`: an HTTP server on 127.0.0.1
// that verifies every delivery as Standard Webhooks prescribes (docs/webhooks.md)
// and answers 204. The verification is the receiver's own code, not the
// server's, so a delivery the server signs wrongly is counted, not trusted.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// webhookTolerance is how far webhook-timestamp may be from the receiver's
// clock (the standardwebhooks libraries allow 5 minutes).
const webhookTolerance = 5 * time.Minute

var (
	errNoSecretPrefix  = errors.New(`secret does not start with "whsec_"`)
	errMissingHeaders  = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	errBadTimestamp    = errors.New("webhook-timestamp is not an integer")
	errStaleTimestamp  = errors.New("webhook-timestamp too far from now")
	errNoSignatureHits = errors.New("no v1 signature matches")
)

// decodeWebhookSecret returns the HMAC key of a "whsec_<base64>" secret.
func decodeWebhookSecret(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, "whsec_") {
		return nil, errNoSecretPrefix
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("secret is not base64 after whsec_: %v", err)
	}
	if len(key) == 0 {
		return nil, errors.New("empty secret")
	}
	return key, nil
}

// signWebhook returns the base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")
// (without the "v1," prefix).
func signWebhook(key []byte, id, timestamp string, body []byte) string {
	return base64.StdEncoding.EncodeToString(webhookMAC(key, id, timestamp, body))
}

// webhookMAC is HMAC-SHA256(key, "{id}.{timestamp}.{body}"), the signed content of Standard Webhooks.
func webhookMAC(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verifyWebhook checks one delivery: the timestamp within tolerance of now,
// and at least one space-separated "v1,<base64>" of the signature header
// equal (constant time) to the HMAC over the raw body. Other versions are
// skipped, as the libraries do.
func verifyWebhook(key []byte, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return errMissingHeaders
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return errStaleTimestamp
	}
	want := webhookMAC(key, id, timestamp, body)
	for _, part := range strings.Fields(signature) {
		v, sig, ok := strings.Cut(part, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return errNoSignatureHits
}

// eventRow is what the benchmark reads from an agent-log row: the socket
// event payload of a non-job event and the webhook body are both the
// polling row {event_id, type, subject, time, cloudevent_id, data}.
type eventRow struct {
	EventID      int64  `json:"event_id"`
	Type         string `json:"type"`
	CloudEventID string `json:"cloudevent_id"`
	Data         struct {
		Message struct {
			ID string `json:"id"`
		} `json:"message"`
	} `json:"data"`
}

func parseEventRow(b []byte) (eventRow, error) {
	r := eventRow{EventID: -1}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	return r, nil
}

// whReceiver serves POST /hooks/{agent index} (the benchmark's endpoints)
// and POST /floor (the in-run floor). It needs the secret of an endpoint
// before it can verify its deliveries: a delivery that comes first waits
// for it (setSecret) up to secretWait.
type whReceiver struct {
	now        func() int64 // ns since the benchmark's base
	record     func(a whArrival)
	secretWait time.Duration

	mu      sync.Mutex
	keys    [][]byte
	ready   []chan struct{}
	floorKy []byte

	floorOK   atomic.Int64
	floorBad  atomic.Int64
	badSig    atomic.Int64 // hook deliveries refused (401): signature, timestamp or headers
	firstBad  atomic.Pointer[string]
	idMismat  atomic.Int64 // webhook-id != the body's cloudevent_id
	badBody   atomic.Int64 // the body is not an event row
	badPath   atomic.Int64
	nRequests atomic.Int64
	maxBody   atomic.Int64 // largest hook body seen (the floor posts bodies of this size)

	srv *http.Server
	ln  net.Listener
}

func newWHReceiver(agents int, now func() int64, record func(whArrival)) *whReceiver {
	rv := &whReceiver{now: now, record: record, secretWait: 5 * time.Second,
		keys: make([][]byte, agents), ready: make([]chan struct{}, agents)}
	for i := range rv.ready {
		rv.ready[i] = make(chan struct{})
	}
	return rv
}

func (rv *whReceiver) setSecret(agent int, key []byte) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.keys[agent] == nil {
		rv.keys[agent] = key
		close(rv.ready[agent])
	}
}

func (rv *whReceiver) key(agent int) []byte {
	rv.mu.Lock()
	ch := rv.ready[agent]
	k := rv.keys[agent]
	rv.mu.Unlock()
	if k != nil {
		return k
	}
	select {
	case <-ch:
	case <-time.After(rv.secretWait):
		return nil
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.keys[agent]
}

func (rv *whReceiver) bad(why string) {
	rv.firstBad.CompareAndSwap(nil, &why)
}

// start listens on 127.0.0.1 (a free port) and serves in the background.
func (rv *whReceiver) start() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	rv.ln = ln
	rv.srv = &http.Server{Handler: rv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go rv.srv.Serve(ln)
	return ln.Addr().String(), nil
}

func (rv *whReceiver) close() {
	if rv.srv != nil {
		rv.srv.Close()
	}
}

func (rv *whReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rv.nRequests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	t := rv.now()
	if err != nil || r.Method != http.MethodPost {
		rv.badPath.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	if r.URL.Path == "/floor" {
		rv.mu.Lock()
		fk := rv.floorKy
		rv.mu.Unlock()
		if verifyWebhook(fk, id, ts, sig, body, time.Now(), webhookTolerance) != nil {
			rv.floorBad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rv.floorOK.Add(1)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	agent, err := strconv.Atoi(rest)
	if !ok || err != nil || agent < 0 || agent >= len(rv.keys) {
		rv.badPath.Add(1)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	key := rv.key(agent)
	if key == nil {
		rv.badSig.Add(1)
		rv.bad(fmt.Sprintf("agent %d: no secret known", agent))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := verifyWebhook(key, id, ts, sig, body, time.Now(), webhookTolerance); err != nil {
		rv.badSig.Add(1)
		rv.bad(fmt.Sprintf("agent %d, webhook-id %s: %v", agent, id, err))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	for n := int64(len(body)); n > rv.maxBody.Load(); {
		if rv.maxBody.CompareAndSwap(rv.maxBody.Load(), n) {
			break
		}
	}
	row, err := parseEventRow(body)
	if err != nil {
		rv.badBody.Add(1)
	}
	if row.CloudEventID != id {
		rv.idMismat.Add(1)
	}
	// Matching uses the header: it is what a receiver dedupes on.
	rv.record(whArrival{agent: int32(agent), ceid: id, msgID: row.Data.Message.ID, typ: row.Type, eventID: row.EventID, t: t})
	w.WriteHeader(http.StatusNoContent)
}
