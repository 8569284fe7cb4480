package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseEIOOpen(t *testing.T) {
	o, err := parseEIOOpen([]byte(`0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	if err != nil || o.Sid != "abc" || o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != 1000000 {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []string{`40{}`, `0{"upgrades":[]}`, `0{`, ``} {
		if _, err := parseEIOOpen([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSIOConnectAndAckPackets(t *testing.T) {
	if got := sioConnectPacket(`k"1`, -1); got != `40{"apiKey":"k\"1"}` {
		t.Fatalf("got %s", got)
	}
	if got := sioConnectPacket("k", 0); got != `40{"apiKey":"k","since":0}` {
		t.Fatalf("got %s", got)
	}
	if got := string(sioAckPacket(nil, 17)); got != `4317[true]` {
		t.Fatalf("got %s", got)
	}
}

func TestParseSIOEvent(t *testing.T) {
	cases := []struct {
		in, name, payload string
		ack               int64
		nsp               string
	}{
		{`42["roomJoined",{"agent_id":"agt_x","since":null,"head_event_id":7}]`, "roomJoined", `{"agent_id":"agt_x","since":null,"head_event_id":7}`, -1, ""},
		{`420["roomJoined",{"a":1}]`, "roomJoined", `{"a":1}`, 0, ""},
		{`4212["onNewTask",{"id":3,"s":"a]b\"}"}]`, "onNewTask", `{"id":3,"s":"a]b\"}"}`, 12, ""},
		{`42/admin,5["x",[1,2]]`, "x", `[1,2]`, 5, "/admin"},
		{`42["noargs"]`, "noargs", "", -1, ""},
		{`42[ "spaced" , 1 ]`, "spaced", "1", -1, ""},
	}
	for _, tc := range cases {
		ev, err := parseSIOEvent([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(ev.Name) != tc.name || string(ev.Payload) != tc.payload || ev.AckID != tc.ack || string(ev.Nsp) != tc.nsp {
			t.Errorf("%s: name=%q payload=%q ack=%d nsp=%q", tc.in, ev.Name, ev.Payload, ev.AckID, ev.Nsp)
		}
	}
	for _, bad := range []string{`42`, `42{}`, `42[1]`, `42["x"`, `42["x",{"a":1}`, `40{}`, `42/nsp["x"]`} {
		if _, err := parseSIOEvent([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestScanEventPayload(t *testing.T) {
	job := `{"id":42,"phase":0,"phaseName":"REQUEST","memos":[{"id":999,"phase":5,"content":"say \"hi\" {}[]"}],` +
		`"escrow":null,"nested":{"id":7},"event_id":1234,"change":{"action":"create","to":0}}`
	info, err := scanEventPayload([]byte(job))
	if err != nil || info.JobID != 42 || info.Phase != 0 || info.EventID != 1234 {
		t.Fatalf("%+v %v", info, err)
	}
	// The CloudEvent-shaped payload with the job under data is not a
	// phase-0 onNewTask: no id/phase at the top.
	ce := `{"event_id":5,"type":"job.memo_created","subject":"42","time":"t","cloudevent_id":"u","data":{"job":{"id":42,"phase":1}}}`
	info, err = scanEventPayload([]byte(ce))
	if err != nil || info.EventID != 5 || info.JobID != -1 || info.Phase != -1 {
		t.Fatalf("%+v %v", info, err)
	}
	// A {"job":{...}} wrapper is looked into.
	info, _ = scanEventPayload([]byte(`{"event_id":"9","job":{"id":"11","phase":0}}`))
	if info.EventID != 9 || info.JobID != 11 || info.Phase != 0 {
		t.Fatalf("%+v", info)
	}
	info, _ = scanEventPayload([]byte(`{"agent_id":"agt_x","since":null,"head_event_id":77}`))
	if info.HeadID != 77 {
		t.Fatalf("%+v", info)
	}
	for _, bad := range []string{`{"id":1`, `{"id"}`, `[1]`, `{"a":"unterminated}`} {
		if _, err := scanEventPayload([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestJSONInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "17": 17, "-3": -3, `"42"`: 42, "9007199254740993": 9007199254740993} {
		if got, ok := jsonInt([]byte(in)); !ok || got != want {
			t.Errorf("%s -> %d %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-", "1.5", "null", `"x"`, "1e3", strings.Repeat("9", 30)} {
		if _, ok := jsonInt([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestJSONStringField(t *testing.T) {
	if got := jsonStringField([]byte(`{"a":1,"agent_id":"agt_\u0061b"}`), "agent_id"); got != "agt_ab" {
		t.Fatalf("got %q", got)
	}
}

func TestPairForSpreadsJobs(t *testing.T) {
	const a = 7
	asClient := make([]int, a)
	asProvider := make([]int, a)
	partners := map[[2]int]bool{}
	for i := uint64(0); i < 3*a; i++ {
		c, p := pairFor(i, a)
		if c == p || c < 0 || p < 0 || c >= a || p >= a {
			t.Fatalf("job %d: client %d provider %d", i, c, p)
		}
		asClient[c]++
		asProvider[p]++
		partners[[2]int{c, p}] = true
	}
	for k := 0; k < a; k++ {
		if asClient[k] != 3 || asProvider[k] != 3 {
			t.Fatalf("agent %d: %d as client, %d as provider", k, asClient[k], asProvider[k])
		}
	}
	if len(partners) != 3*a {
		t.Fatalf("only %d distinct pairs in %d jobs", len(partners), 3*a)
	}
	if c, p := pairFor(5, 2); c == p {
		t.Fatal("two agents: same agent on both sides")
	}
}

func TestHandleOrderAndDuplicates(t *testing.T) {
	cfg := &FanoutConfig{Mode: "live"}
	f := newFanout(cfg, nil, nil)
	f.agents = []Agent{{ID: "a", Key: "k"}, {ID: "b", Key: "k2"}}
	f.open = make([]atomic.Int32, 2)
	f.joined.Add(1)
	c := &fanConn{agent: 0, head: -1, lastEv: -1}
	frames := []string{
		`420["roomJoined",{"agent_id":"a","since":null,"head_event_id":0}]`,
		`421["onNewTask",{"id":10,"phase":0,"event_id":1}]`,
		`422["onNewTask",{"id":10,"phase":3,"event_id":2}]`,
		`422["onEvaluate",{"id":10,"phase":3,"event_id":2}]`, // same event, second frame: fine
		`422["onEvaluate",{"id":10,"phase":3,"event_id":2}]`, // duplicate
		`421["onNewTask",{"id":10,"phase":0,"event_id":1}]`,  // duplicate and out of order
		`423["job.memo_created",{"event_id":3,"type":"job.memo_created","data":{}}]`,
	}
	for _, fr := range frames {
		if f.handle(c, nil, []byte(fr), time.Minute) {
			t.Fatalf("%s: asked to stop", fr)
		}
	}
	if c.status.Load() != stJoined || c.parseErrors != 0 {
		t.Fatalf("status %d parse errors %d (%s)", c.status.Load(), c.parseErrors, c.firstParseError)
	}
	if c.outOfOrder != 1 {
		t.Fatalf("out of order %d", c.outOfOrder)
	}
	if d := countDuplicates(append([]wsRec(nil), c.recs...)); d != 2 {
		t.Fatalf("duplicates %d", d)
	}
	// Job 10's 201 was never recorded: both phase-0 receipts wait as early
	// ones and are credited when it is.
	if f.received.Load() != 0 || c.otherEvents != 4 {
		t.Fatalf("measured receipts %d, other %d", f.received.Load(), c.otherEvents)
	}
	if early := f.jobs.record(10, jobInfo{client: 0, provider: 1}); early != 2 {
		t.Fatalf("early receipts %d", early)
	}
	if !f.jobs.received(10) {
		t.Fatal("a receipt after the 201 of a measured job is not counted")
	}
	f.jobs.record(11, jobInfo{warm: true})
	if f.jobs.received(11) {
		t.Fatal("a warm-up job's receipt is counted")
	}
	if c.lastEv != 3 {
		t.Fatalf("last event id %d", c.lastEv)
	}
}

func TestScanEventPayloadStopsEarly(t *testing.T) {
	// Garbage after id and phase is never looked at in job-only mode.
	p := []byte(`{"id":5,"phase":0,"memos":[{"broken`)
	info, err := scanEventPayloadUntil(p, true)
	if err != nil || info.JobID != 5 || info.Phase != 0 {
		t.Fatalf("%+v %v", info, err)
	}
	if _, err := scanEventPayloadUntil(p, false); err == nil {
		t.Fatal("full scan should fail on the broken tail")
	}
}
