package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// startBaseline serves b on a free loopback port and returns its base URL.
func startBaseline(t *testing.T, b *baseline) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b}
	go srv.Serve(ln)
	t.Cleanup(func() { b.shutdown(); srv.Close() })
	return "http://" + ln.Addr().String()
}

func testFanoutConfig(url, mode string) FanoutConfig {
	return FanoutConfig{
		URL: url, WSPath: "/ws/agent/", Mode: mode, Agents: 10, ConnsPerAgent: 3,
		Rate: 200, Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: 2 * time.Second,
		ConnectRate: 0, ConnectTimeout: 5 * time.Second, HandshakeTimeout: 2 * time.Second,
		Backlog: 6, CatchupTimeout: 10 * time.Second, HTTPConns: 8, MaxInFlight: 1000,
		Timeout: 5 * time.Second, SetupConc: 4, ServerPID: os.Getpid(),
	}
}

func runFanout(t *testing.T, cfg FanoutConfig) WSReport {
	t.Helper()
	f, err := newFanoutFor(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := f.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var buf bytes.Buffer
	PrintWSTable(&buf, r)
	t.Log("\n" + buf.String())
	return r
}

func TestFanoutLiveAgainstBaseline(t *testing.T) {
	url := startBaseline(t, newBaseline(5, 25*time.Second, 20*time.Second))
	cfg := testFanoutConfig(url, "live")
	cfg.Ack = true
	r := runFanout(t, cfg)
	if r.ConnsEstablished != 30 || r.ConnsFailed != 0 {
		t.Fatalf("connections: %d established, %d failed (%s)", r.ConnsEstablished, r.ConnsFailed, r.FirstConnFailure)
	}
	if r.JobsCreated != 200 || r.CreateErrors != 0 {
		t.Fatalf("created %d, errors %d", r.JobsCreated, r.CreateErrors)
	}
	// Every job reaches 3 sockets of its client and 3 of its provider.
	if r.Expected != 200*6 || r.Delivered != r.Expected || r.Lost != 0 {
		t.Fatalf("expected %d delivered %d lost %d", r.Expected, r.Delivered, r.Lost)
	}
	if r.Duplicates != 0 || r.OutOfOrder != 0 || r.UnexpectedMsgs != 0 || r.Misrouted != 0 || r.ParseErrors != 0 {
		t.Fatalf("dup %d ooo %d unexpected %d misrouted %d parse %d (%s)", r.Duplicates, r.OutOfOrder, r.UnexpectedMsgs, r.Misrouted, r.ParseErrors, r.FirstParseError)
	}
	if r.Latency.Samples != int(r.Delivered) || r.LatencyFromRequest.Samples != int(r.Delivered) {
		t.Fatalf("latency samples %d / %d", r.Latency.Samples, r.LatencyFromRequest.Samples)
	}
	if r.LatencyFromRequest.P50ms < r.Latency.P50ms {
		t.Fatalf("end-to-end p50 %.3f < delivery p50 %.3f", r.LatencyFromRequest.P50ms, r.Latency.P50ms)
	}
	if r.DrainTimedOut || r.DeliveredPerSec < 1000 {
		t.Fatalf("drain timed out %v, %.1f msgs/s", r.DrainTimedOut, r.DeliveredPerSec)
	}
	if r.ServerCPUCores <= 0 {
		t.Fatalf("server CPU not measured: %+v", r.ServerCPUCores)
	}
}

func TestFanoutCountsLossDuplicatesAndFragments(t *testing.T) {
	b := newBaseline(5, 25*time.Second, 20*time.Second)
	b.dropEvery, b.dupEvery, b.fragment = 4, 5, true
	url := startBaseline(t, b)
	cfg := testFanoutConfig(url, "live")
	cfg.Drain, cfg.Warmup = 500*time.Millisecond, 0
	r := runFanout(t, cfg)
	if r.Lost == 0 || r.Delivered+r.Lost != r.Expected {
		t.Fatalf("lost %d delivered %d expected %d", r.Lost, r.Delivered, r.Expected)
	}
	if !r.DrainTimedOut {
		t.Fatal("drain should time out when messages are missing")
	}
	if r.Duplicates == 0 || r.DuplicateJobs != r.Duplicates || r.OutOfOrder != 0 {
		t.Fatalf("duplicates %d duplicate jobs %d out of order %d", r.Duplicates, r.DuplicateJobs, r.OutOfOrder)
	}
	if r.WSFragments == 0 || r.WSPings == 0 || r.ParseErrors != 0 {
		t.Fatalf("fragments %d pings %d parse errors %d", r.WSFragments, r.WSPings, r.ParseErrors)
	}
}

func TestFanoutRefusalsAreCounted(t *testing.T) {
	url := startBaseline(t, newBaseline(2, 25*time.Second, 20*time.Second))
	cfg := testFanoutConfig(url, "live")
	cfg.Duration, cfg.Warmup, cfg.Rate = 200*time.Millisecond, 0, 50
	r := runFanout(t, cfg)
	if r.ConnsEstablished != 20 || r.ConnsFailed != 10 || r.ConnsRefused != 10 {
		t.Fatalf("established %d failed %d refused %d", r.ConnsEstablished, r.ConnsFailed, r.ConnsRefused)
	}
	if !strings.Contains(r.FirstConnFailure, "too_many_connections") {
		t.Fatalf("first failure %q", r.FirstConnFailure)
	}
	if r.Lost != 0 || r.Expected != r.JobsCreated*4 {
		t.Fatalf("lost %d expected %d jobs %d", r.Lost, r.Expected, r.JobsCreated)
	}
}

func TestFanoutHeartbeat(t *testing.T) {
	url := startBaseline(t, newBaseline(5, 100*time.Millisecond, 2*time.Second))
	cfg := testFanoutConfig(url, "live")
	cfg.Agents, cfg.ConnsPerAgent, cfg.Rate, cfg.Duration, cfg.Warmup = 2, 1, 10, 700*time.Millisecond, 0
	r := runFanout(t, cfg)
	if r.EIOPings < 6 || r.ConnsClosedDuringRun != 0 {
		t.Fatalf("pings %d, closed %d (%s)", r.EIOPings, r.ConnsClosedDuringRun, r.FirstCloseReason)
	}
}

func TestFanoutServerShutdownIsReported(t *testing.T) {
	b := newBaseline(5, 25*time.Second, 20*time.Second)
	url := startBaseline(t, b)
	cfg := testFanoutConfig(url, "live")
	cfg.Agents, cfg.ConnsPerAgent, cfg.Rate, cfg.Duration, cfg.Warmup = 2, 2, 20, time.Second, 0
	cfg.Drain = 200 * time.Millisecond
	time.AfterFunc(500*time.Millisecond, b.shutdown)
	r := runFanout(t, cfg)
	if r.ConnsClosedDuringRun != 4 || !strings.Contains(r.FirstCloseReason, "1001") || !strings.Contains(r.FirstCloseReason, "closing") {
		t.Fatalf("closed %d, reason %q", r.ConnsClosedDuringRun, r.FirstCloseReason)
	}
}

func TestFanoutCatchupAgainstBaseline(t *testing.T) {
	url := startBaseline(t, newBaseline(5, 25*time.Second, 20*time.Second))
	cfg := testFanoutConfig(url, "catchup")
	r := runFanout(t, cfg)
	if r.ConnsEstablished != 30 || r.ConnsComplete != 30 || r.ConnsIncomplete != 0 {
		t.Fatalf("established %d complete %d incomplete %d (%s)", r.ConnsEstablished, r.ConnsComplete, r.ConnsIncomplete, r.FirstConnFailure)
	}
	// 6 events per agent = 3 rounds of 10 jobs.
	if r.JobsCreated != 30 || r.BacklogPerAgent != 6 {
		t.Fatalf("jobs %d per agent %d", r.JobsCreated, r.BacklogPerAgent)
	}
	if r.Expected != 30*6 || r.Delivered != r.Expected || r.Lost != 0 || r.FramesReceived != r.Expected {
		t.Fatalf("expected %d delivered %d lost %d frames %d", r.Expected, r.Delivered, r.Lost, r.FramesReceived)
	}
	if r.OutOfOrder != 0 || r.Duplicates != 0 || r.BeforeJoin != 0 || r.CatchupS <= 0 || r.DeliveredPerSec <= 0 {
		t.Fatalf("order %d dup %d before %d catchup %.3fs %.1f/s", r.OutOfOrder, r.Duplicates, r.BeforeJoin, r.CatchupS, r.DeliveredPerSec)
	}
}

func TestBaselineRefusesBadKey(t *testing.T) {
	url := startBaseline(t, newBaseline(5, 25*time.Second, 20*time.Second))
	addr := strings.TrimPrefix(url, "http://")
	ws, err := NewWSDialer(addr, addr, 2*time.Second).Dial(context.Background(), "/ws/agent/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, msg, err := ws.ReadMessage(); err != nil || msg[0] != '0' {
		t.Fatalf("%q %v", msg, err)
	}
	ws.WriteText(sioConnectPacket("nope", -1))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.HasPrefix(string(msg), `44{"message":"invalid api key"`) {
		t.Fatalf("%q %v", msg, err)
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("socket not closed after refusal")
	}
}

func TestProcCPU(t *testing.T) {
	if ProcCPU(os.Getpid()) < 0 {
		t.Fatal("cannot read own CPU time")
	}
	if ProcCPU(0) != -1 {
		t.Fatal("pid 0 should be unknown")
	}
}

func TestCompareDetectsWSReports(t *testing.T) {
	dir := t.TempDir()
	r := WSReport{Scenario: "ws-live", Mode: "live", Label: "a", DeliveredPerSec: 100, ConnsEstablished: 3}
	b := r
	b.Label, b.DeliveredPerSec = "b", 50
	write := func(name string, rep WSReport) string {
		p := dir + "/" + name
		f, _ := os.Create(p)
		WriteJSON(f, rep)
		f.Close()
		return p
	}
	pr, pb := write("r.json", r), write("b.json", b)
	if reportScenario(pr) != "ws-live" {
		t.Fatal("scenario not read")
	}
	rr, err1 := ReadWSReport(pr)
	br, err2 := ReadWSReport(pb)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	var buf bytes.Buffer
	PrintWSCompare(&buf, "", rr, br)
	if !strings.Contains(buf.String(), "2.00x") {
		t.Fatalf("no ratio in:\n%s", buf.String())
	}
}

func TestJSONPath(t *testing.T) {
	v := []byte(`{"a":1,"s":"x y","o":{"p":2.5,"q":{"r":null}}}`)
	for path, want := range map[string]string{"a": "1", "s": "x y", "o.p": "2.5", "o.q.r": "null", "o.z": "-", "a.b": "-", "zz": "-"} {
		if got := jsonPath(v, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}
