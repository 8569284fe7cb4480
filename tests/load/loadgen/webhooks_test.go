package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks specification and libraries.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = "1614265330"
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var swNow = time.Unix(1614265330, 0)

func TestSignWebhookStandardVector(t *testing.T) {
	key, err := decodeWebhookSecret(swSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + signWebhook(key, swID, swTimestamp, []byte(swBody)); got != swSignature {
		t.Fatalf("signature %s, want %s", got, swSignature)
	}
	if err := verifyWebhook(key, swID, swTimestamp, swSignature, []byte(swBody), swNow, webhookTolerance); err != nil {
		t.Fatalf("the standard vector does not verify: %v", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	key, _ := decodeWebhookSecret(swSecret)
	other, _ := decodeWebhookSecret("whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	good := swSignature
	bad := "v1," + signWebhook(other, swID, swTimestamp, []byte(swBody))
	cases := []struct {
		name      string
		id, ts    string
		sig, body string
		now       time.Time
		want      error
	}{
		{"valid", swID, swTimestamp, good, swBody, swNow, nil},
		{"rotation: the second signature matches", swID, swTimestamp, bad + " " + good, swBody, swNow, nil},
		{"rotation: the first signature matches", swID, swTimestamp, good + " " + bad, swBody, swNow, nil},
		{"other versions are skipped", swID, swTimestamp, "v2,abc " + good, swBody, swNow, nil},
		{"4 minutes late is fine", swID, swTimestamp, good, swBody, swNow.Add(4 * time.Minute), nil},
		{"wrong key", swID, swTimestamp, bad, swBody, swNow, errNoSignatureHits},
		{"body changed", swID, swTimestamp, good, `{"test": 2432232315}`, swNow, errNoSignatureHits},
		{"body re-serialized", swID, swTimestamp, good, `{"test":2432232314}`, swNow, errNoSignatureHits},
		{"id changed", "msg_other", swTimestamp, good, swBody, swNow, errNoSignatureHits},
		{"timestamp changed", swID, "1614265331", good, swBody, swNow, errNoSignatureHits},
		{"no v1 prefix", swID, swTimestamp, strings.TrimPrefix(good, "v1,"), swBody, swNow, errNoSignatureHits},
		{"not base64", swID, swTimestamp, "v1,!!!", swBody, swNow, errNoSignatureHits},
		{"stale", swID, swTimestamp, good, swBody, swNow.Add(6 * time.Minute), errStaleTimestamp},
		{"from the future", swID, swTimestamp, good, swBody, swNow.Add(-6 * time.Minute), errStaleTimestamp},
		{"timestamp not a number", swID, "x", good, swBody, swNow, errBadTimestamp},
		{"missing id", "", swTimestamp, good, swBody, swNow, errMissingHeaders},
		{"missing signature", swID, swTimestamp, "", swBody, swNow, errMissingHeaders},
	}
	for _, c := range cases {
		if got := verifyWebhook(key, c.id, c.ts, c.sig, []byte(c.body), c.now, webhookTolerance); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecodeWebhookSecret(t *testing.T) {
	if _, err := decodeWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != errNoSecretPrefix {
		t.Errorf("no prefix: %v", err)
	}
	if _, err := decodeWebhookSecret("whsec_not base64!"); err == nil {
		t.Error("bad base64 accepted")
	}
	if _, err := decodeWebhookSecret("whsec_"); err == nil {
		t.Error("empty secret accepted")
	}
	k, err := decodeWebhookSecret("whsec_Bzn4ih3jOTHgOlU7kehv+IglD349ik45")
	if err != nil || len(k) != 24 {
		t.Errorf("docs example: %d bytes, %v", len(k), err)
	}
}

func TestParseEventRow(t *testing.T) {
	body := `{"event_id":42,"type":"thread.message_posted","subject":"thr_x","time":"2026-05-04T10:15:30.123Z",` +
		`"cloudevent_id":"930962e5-f3d4-421b-8680-9ec9e7ed74f9","data":{"thread":{"id":"thr_x"},"message":{"id":"msg_abc","seq":3}}}`
	r, err := parseEventRow([]byte(body))
	if err != nil || r.EventID != 42 || r.Type != typeMessagePosted || r.CloudEventID != "930962e5-f3d4-421b-8680-9ec9e7ed74f9" || r.Data.Message.ID != "msg_abc" {
		t.Fatalf("got %+v, %v", r, err)
	}
	// Other events have no message: fine.
	r, err = parseEventRow([]byte(`{"event_id":7,"type":"agent.registered","cloudevent_id":"c","data":{"agent":{}}}`))
	if err != nil || r.Data.Message.ID != "" || r.EventID != 7 {
		t.Fatalf("got %+v, %v", r, err)
	}
	// The same row as a socket.io event frame (ack id = event_id).
	ev, err := parseSIOEvent([]byte(`4242["thread.message_posted",` + body + `]`))
	if err != nil || ev.AckID != 42 || string(ev.Name) != typeMessagePosted {
		t.Fatalf("frame: %+v, %v", ev, err)
	}
	if r, err := parseEventRow(ev.Payload); err != nil || r.Data.Message.ID != "msg_abc" {
		t.Fatalf("frame payload: %+v, %v", r, err)
	}
}

// The receiver is exercised through its handler (no socket).
func TestReceiverHandler(t *testing.T) {
	var got []whArrival
	rv := newWHReceiver(2, func() int64 { return 123 }, func(a whArrival) { got = append(got, a) })
	rv.secretWait = 10 * time.Millisecond
	key, _ := decodeWebhookSecret(swSecret)
	rv.setSecret(1, key)
	ce := "930962e5-f3d4-421b-8680-9ec9e7ed74f9"
	body := []byte(`{"event_id":5,"type":"thread.message_posted","cloudevent_id":"` + ce + `","data":{"message":{"id":"msg_1"}}}`)
	post := func(path, id string, k []byte, b []byte) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+signWebhook(k, id, ts, b))
		w := httptest.NewRecorder()
		rv.ServeHTTP(w, req)
		return w.Code
	}
	if c := post("/hooks/1", ce, key, body); c != http.StatusNoContent {
		t.Fatalf("valid delivery: %d", c)
	}
	if len(got) != 1 || got[0].agent != 1 || got[0].ceid != ce || got[0].msgID != "msg_1" || got[0].eventID != 5 || got[0].t != 123 {
		t.Fatalf("recorded %+v", got)
	}
	other, _ := decodeWebhookSecret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if c := post("/hooks/1", ce, other, body); c != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", c)
	}
	if c := post("/hooks/0", ce, key, body); c != http.StatusUnauthorized { // no secret known for agent 0
		t.Fatalf("unknown secret: %d", c)
	}
	if rv.badSig.Load() != 2 || rv.firstBad.Load() == nil {
		t.Fatalf("refusals %d", rv.badSig.Load())
	}
	if c := post("/hooks/1", "another-id", key, body); c != http.StatusNoContent || rv.idMismat.Load() != 1 {
		t.Fatalf("id mismatch: %d, %d", c, rv.idMismat.Load())
	}
	if c := post("/hooks/7", ce, key, body); c != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", c)
	}
	fk := []byte("floor key")
	rv.floorKy = fk
	if c := post("/floor", "f-1", fk, body); c != http.StatusNoContent || rv.floorOK.Load() != 1 {
		t.Fatalf("floor: %d", c)
	}
	if len(got) != 2 {
		t.Fatalf("%d recorded, want 2", len(got))
	}
	if rv.maxBody.Load() != int64(len(body)) {
		t.Fatalf("max body %d", rv.maxBody.Load())
	}
}

func ms(v float64) int64 { return int64(v * 1e6) }

func TestAnalyzeWH(t *testing.T) {
	// Three measured writes (agents 0->1, 1->2, 2->0) and one warm-up write.
	writes := []whWrite{
		{msgID: "m0", respNs: ms(100), intendedNs: ms(95), a: 0, b: 1},
		{msgID: "m1", respNs: ms(200), intendedNs: ms(190), a: 1, b: 2},
		{msgID: "m2", respNs: ms(300), intendedNs: ms(300), a: 2, b: 0},
		{msgID: "w", respNs: ms(50), intendedNs: ms(50), a: 0, b: 1, warm: true},
	}
	mp := typeMessagePosted
	var arr [2][]whArrival
	arr[chSocket] = []whArrival{
		{agent: 0, ceid: "cw", msgID: "w", typ: mp, eventID: 1, t: ms(51)},
		{agent: 0, ceid: "c0", msgID: "m0", typ: mp, eventID: 2, t: ms(99)}, // before the 201: clamped to 0
		{agent: 1, ceid: "c0", msgID: "m0", typ: mp, eventID: 2, t: ms(101)},
		{agent: 1, ceid: "c1", msgID: "m1", typ: mp, eventID: 3, t: ms(202)},
		{agent: 2, ceid: "c1", msgID: "m1", typ: mp, eventID: 1, t: ms(203)},
		{agent: 2, ceid: "c1", msgID: "m1", typ: mp, eventID: 1, t: ms(204)}, // duplicate
		{agent: 2, ceid: "c2", msgID: "m2", typ: mp, eventID: 2, t: ms(304)},
		{agent: 0, ceid: "c2", msgID: "m2", typ: mp, eventID: 3, t: ms(305)},
		{agent: 0, ceid: "x", typ: "agent.key_created", eventID: 4, t: ms(306)},
	}
	arr[chWebhook] = []whArrival{
		{agent: 0, ceid: "c0", msgID: "m0", typ: mp, eventID: 2, t: ms(110)},
		{agent: 1, ceid: "c0", msgID: "m0", typ: mp, eventID: 2, t: ms(120)},
		{agent: 1, ceid: "c1", msgID: "m1", typ: mp, eventID: 3, t: ms(230)},
		{agent: 2, ceid: "c1", msgID: "m1", typ: mp, eventID: 1, t: ms(240)},
		{agent: 2, ceid: "c2", msgID: "m2", typ: mp, eventID: 2, t: ms(350)},
		// agent 0 never gets m2 by webhook
		{agent: 1, ceid: "cz", msgID: "mz", typ: mp, eventID: 1, t: ms(400)}, // unmatched, and out of order for agent 1
		{agent: 2, ceid: "c0", msgID: "m0", typ: mp, eventID: 9, t: ms(401)}, // misrouted: agent 2 is not in thread 0
	}
	a := analyzeWH(writes, arr, time.Second)
	s, w := a.ch[chSocket], a.ch[chWebhook]
	if s.Expected != 6 || s.Delivered != 6 || s.Missing != 0 || s.Duplicates != 1 || s.NegativeClamped != 1 ||
		s.OtherEvents != 1 || s.OtherEventNames["agent.key_created"] != 1 || s.Unmatched != 0 || s.Misrouted != 0 {
		t.Errorf("socket.io: %+v", s)
	}
	if w.Expected != 6 || w.Delivered != 5 || w.Missing != 1 || w.Duplicates != 0 || w.Unmatched != 1 || w.Misrouted != 1 || w.OutOfOrder != 1 {
		t.Errorf("webhook: %+v", w)
	}
	// socket.io latencies: 0 (clamped), 1, 2, 3, 4, 5 ms.
	if s.Latency.P50ms != 2 || s.Latency.P90ms != 5 || s.Latency.Maxms != 5 || s.Latency.Count != 6 {
		t.Errorf("socket.io latency %+v", s.Latency)
	}
	// webhook latencies: 10, 20, 30, 40, 50 ms.
	if w.Latency.P50ms != 30 || w.Latency.P90ms != 50 || w.Latency.P99ms != 50 || w.Latency.Maxms != 50 {
		t.Errorf("webhook latency %+v", w.Latency)
	}
	// end to end from the intended start: socket.io agent 0 of m0 = 99 - 95.
	if s.EndToEnd.Count != 6 || s.EndToEnd.P50ms != 5 {
		t.Errorf("socket.io end to end %+v", s.EndToEnd)
	}
	// Throughput: less than half the schedule between first and last: over the schedule.
	if s.WindowS != 1 || s.PerSec != 6 || w.PerSec != 5 {
		t.Errorf("window %v, rates %v %v", s.WindowS, s.PerSec, w.PerSec)
	}
	// Paired: (110-99), (120-101), (230-202), (240-203), (350-304) = 11, 19, 28, 37, 46.
	if a.paired.Count != 5 || a.paired.P50ms != 28 || a.paired.Maxms != 46 || a.webhookFirst != 0 || a.ceidConflicts != 0 {
		t.Errorf("paired %+v, first %d, conflicts %d", a.paired, a.webhookFirst, a.ceidConflicts)
	}
	r := latencyRatio(w.Latency, s.Latency)
	if r.P50 != 15 || r.P90 != 10 || r.Max != 10 {
		t.Errorf("ratio %+v", r)
	}
}

func TestAnalyzeWHConflictsAndUnknownEvents(t *testing.T) {
	writes := []whWrite{{msgID: "m0", respNs: 0, a: 0, b: 1}}
	mp := typeMessagePosted
	var arr [2][]whArrival
	arr[chSocket] = []whArrival{{agent: 0, ceid: "c0", msgID: "m0", typ: mp, t: ms(1)}}
	// The webhook names another CloudEvent id for the same message: counted, and not matched.
	arr[chWebhook] = []whArrival{{agent: 0, ceid: "c9", msgID: "m0", typ: mp, t: ms(2)}}
	a := analyzeWH(writes, arr, time.Second)
	if a.ceidConflicts != 1 || a.ch[chWebhook].Delivered != 0 || a.ch[chSocket].Delivered != 1 {
		t.Errorf("conflicts %d, delivered %d/%d", a.ceidConflicts, a.ch[chSocket].Delivered, a.ch[chWebhook].Delivered)
	}
	// Nothing received at all: everything missing, no latency, no ratio.
	a = analyzeWH(writes, [2][]whArrival{}, time.Second)
	if a.ch[chSocket].Missing != 2 || a.ch[chWebhook].Missing != 2 || a.ch[chSocket].Latency.Samples != 0 {
		t.Errorf("%+v", a.ch)
	}
	if r := latencyRatio(a.ch[chWebhook].Latency, a.ch[chSocket].Latency); r != (WHRatio{}) || fmtRatio(r.P50) != "-" {
		t.Errorf("ratio %+v", r)
	}
}

func TestFmtRatio(t *testing.T) {
	for v, want := range map[float64]string{0: "-", -1: "-", 1: "1.00x", 12.345: "12.35x", 250: "250x"} {
		if got := fmtRatio(v); got != want {
			t.Errorf("fmtRatio(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestParseWebhookMetrics(t *testing.T) {
	text := `# HELP webhook_deliveries_delivered_total x
# TYPE webhook_deliveries_delivered_total counter
webhook_deliveries_delivered_total 12
webhook_deliveries_failed_total 1
webhook_delivery_seconds_sum 0.5
webhook_delivery_seconds_count 13
webhook_endpoints_disabled_total 0
http_requests_total{route="x"} 9
`
	m := parseWebhookMetrics(strings.NewReader(text))
	if m["webhook_deliveries_delivered_total"] != 12 || m["webhook_deliveries_failed_total"] != 1 ||
		m["webhook_delivery_seconds_sum"] != 0.5 || m["webhook_delivery_seconds_count"] != 13 || len(m) != 4 {
		t.Errorf("%v", m)
	}
}

func TestWHConfigCheck(t *testing.T) {
	ok := WHConfig{URL: "http://127.0.0.1:1", WSPath: "/ws/agent/", Agents: 20, Rate: 50, Duration: 20 * time.Second,
		Warmup: 2 * time.Second, FloorDuration: 5 * time.Second, FloorModes: "new-conn,keep-alive"}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(c *WHConfig){
		"duration above 30s":      func(c *WHConfig) { c.Duration = 31 * time.Second },
		"one agent":               func(c *WHConfig) { c.Agents = 1 },
		"too many per thread":     func(c *WHConfig) { c.Rate = 2000 },
		"unknown floor":           func(c *WHConfig) { c.FloorModes = "new-conn,udp" },
		"no url":                  func(c *WHConfig) { c.URL = "" },
		"floor longer than 10s":   func(c *WHConfig) { c.FloorDuration = 11 * time.Second },
		"ws path without a slash": func(c *WHConfig) { c.WSPath = "ws" },
	}
	for name, mut := range bad {
		c := ok
		mut(&c)
		if c.check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFloorBodySize(t *testing.T) {
	for _, n := range []int{0, 100, 1500} {
		b := floorBody(n)
		if n > 120 && len(b) != n {
			t.Errorf("floorBody(%d) is %d bytes", n, len(b))
		}
		if _, err := parseEventRow(b); err != nil {
			t.Errorf("floorBody(%d) is not an event row: %v", n, err)
		}
	}
}

func TestPrintWHTable(t *testing.T) {
	r := WHReport{Scenario: "webhooks", Agents: 2, RateTarget: 10,
		Socket:  WHChannel{Name: "socket.io", Expected: 4, Delivered: 4, Latency: Summary{P50ms: 1, P90ms: 2, P99ms: 3, Maxms: 4}},
		Webhook: WHChannel{Name: "webhook", Expected: 4, Delivered: 3, Missing: 1, Latency: Summary{P50ms: 10, P90ms: 20, P99ms: 30, Maxms: 40}},
		Floors:  []WHFloor{{Mode: "new connection", HTTP: Summary{Count: 5, OK: 5, P50ms: 0.5}}}}
	r.Ratio = latencyRatio(r.Webhook.Latency, r.Socket.Latency)
	r.RatioFloor = latencyRatio(r.Webhook.Latency, r.Floors[0].HTTP)
	var b bytes.Buffer
	PrintWHTable(&b, r)
	out := b.String()
	for _, want := range []string{"ratio webhook / socket.io", "10.00x", "floor: signed POST, new connection", "ratio webhook / floor (new connection)", "20.00x"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
