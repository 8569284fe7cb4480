package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// WSReport is the machine-readable result of one wsfanout run (one JSON
// line). Live and catch-up share it; fields that do not apply stay zero.
type WSReport struct {
	Label         string `json:"label,omitempty"`
	Scenario      string `json:"scenario"` // ws-live | ws-catchup
	Mode          string `json:"mode"`
	Target        string `json:"target"`
	Agents        int    `json:"agents"`
	ConnsPerAgent int    `json:"conns_per_agent"`
	Ack           bool   `json:"ack"`

	// Connections.
	ConnsTarget          int     `json:"conns_target"`
	ConnsEstablished     int     `json:"conns_established"` // reached roomJoined
	ConnsFailed          int     `json:"conns_failed"`      // never reached roomJoined
	ConnsRefused         int     `json:"conns_refused"`     // of which refused with CONNECT_ERROR (44)
	ConnsClosedDuringRun int     `json:"conns_closed_during_run"`
	FirstConnFailure     string  `json:"first_conn_failure,omitempty"`
	FirstCloseReason     string  `json:"first_close_reason,omitempty"`
	ConnectRate          float64 `json:"connect_rate"`
	ConnectRampS         float64 `json:"connect_ramp_s"`  // time to start every connection
	ConnectPhaseS        float64 `json:"connect_phase_s"` // until every connection joined or failed
	ConnectP50ms         float64 `json:"connect_p50_ms"`  // TCP connect -> roomJoined, per connection
	ConnectP99ms         float64 `json:"connect_p99_ms"`
	ConnectMaxms         float64 `json:"connect_max_ms"`

	// Job creations (live: the measured schedule; catch-up: the backlog).
	RateTarget          float64 `json:"rate_target,omitempty"` // creations/s asked
	MsgsPerCreateTarget int     `json:"msgs_per_create,omitempty"`
	MsgRateTarget       float64 `json:"msg_rate_target,omitempty"` // rate x 2 x conns-per-agent
	DurationS           float64 `json:"duration_s,omitempty"`
	WarmupS             float64 `json:"warmup_s,omitempty"`
	Scheduled           int64   `json:"scheduled,omitempty"`
	Dropped             int64   `json:"dropped"`
	JobsCreated         int64   `json:"jobs_created"`
	CreateErrors        int64   `json:"create_errors"` // non-2xx + transport errors
	BadJobIDs           int64   `json:"bad_job_ids"`   // 2xx without a numeric id
	CreatesPerSec       float64 `json:"creates_per_sec"`
	Create              Summary `json:"create_http"` // HTTP latency of the creations

	// Delivery.
	Expected          int64            `json:"expected"`  // live: sum over created jobs of conns(client)+conns(provider); catch-up: backlog events x connections
	Delivered         int64            `json:"delivered"` // distinct (connection, job) phase-0 onNewTask deliveries
	Lost              int64            `json:"lost"`      // expected - delivered, after the drain
	LostOnClosedConns int64            `json:"lost_on_closed_conns"`
	Duplicates        int64            `json:"duplicates"`     // same event_id (and event name) twice on one connection
	DuplicateJobs     int64            `json:"duplicate_jobs"` // same job's phase-0 onNewTask twice on one connection
	OutOfOrder        int64            `json:"out_of_order"`   // event_id lower than one received before on the connection
	UnexpectedMsgs    int64            `json:"unexpected"`     // phase-0 onNewTask for a job without a 2xx in this run
	Misrouted         int64            `json:"misrouted"`      // onNewTask for a job the connection's agent is not part of
	OtherEvents       int64            `json:"other_events"`   // events other than phase-0 onNewTask
	OtherEventNames   map[string]int64 `json:"other_event_names,omitempty"`
	BeforeJoin        int64            `json:"before_roomjoined"`
	FramesReceived    int64            `json:"frames_received"` // all event frames on established connections
	ParseErrors       int64            `json:"parse_errors"`
	FirstParseError   string           `json:"first_parse_error,omitempty"`
	EIOPings          int64            `json:"eio_pings"`    // Engine.IO "2" answered with "3"
	WSPings           int64            `json:"ws_pings"`     // WebSocket ping frames answered
	WSFragments       int64            `json:"ws_fragments"` // continuation frames seen
	WindowS           float64          `json:"window_s"`     // live: first -> last measured delivery; catch-up: first connect -> last complete
	DeliveredPerSec   float64          `json:"delivered_per_sec"`
	InWindowMsgs      int64            `json:"in_window_msgs,omitempty"`
	InWindowPerSec    float64          `json:"in_window_per_sec,omitempty"` // frames received during the schedule / its duration
	PerSecondSeries   []int64          `json:"per_second,omitempty"`        // frames received in each second of the schedule
	DrainS            float64          `json:"drain_s"`
	DrainTimedOut     bool             `json:"drain_timed_out"`
	Latency           Summary          `json:"latency"` // live: 201 -> receipt; catch-up: roomJoined -> backlog complete, per connection
	NegativeClamped   int64            `json:"negative_clamped"`
	// live: from the intended start of the creation request (open-model
	// schedule) to receipt: HTTP + delivery, never negative.
	LatencyFromRequest Summary `json:"latency_from_request"`

	// Catch-up.
	BacklogPerAgent     int     `json:"backlog_per_agent,omitempty"`
	ConnsComplete       int     `json:"conns_complete,omitempty"`
	ConnsIncomplete     int     `json:"conns_incomplete,omitempty"`
	CatchupS            float64 `json:"catchup_s,omitempty"`
	TailAfterLastJoinS  float64 `json:"tail_after_last_join_s,omitempty"`
	DialToCompleteP50ms float64 `json:"dial_to_complete_p50_ms,omitempty"`
	DialToCompleteP99ms float64 `json:"dial_to_complete_p99_ms,omitempty"`
	DialToCompleteMaxms float64 `json:"dial_to_complete_max_ms,omitempty"`

	// Machine.
	Interrupted    bool    `json:"interrupted"`
	GenCPUCores    float64 `json:"generator_cpu_cores"`
	GenUsPerMsg    float64 `json:"generator_us_per_msg"`
	GenLagP99ms    float64 `json:"gen_lag_p99_ms"`
	GenMaxRSSMB    float64 `json:"generator_max_rss_mb"`
	ServerPID      int     `json:"server_pid,omitempty"`
	ServerCPUCores float64 `json:"server_cpu_cores,omitempty"`
	ServerUsPerMsg float64 `json:"server_us_per_msg,omitempty"`
	GoMaxProcs     int     `json:"gomaxprocs"`
	LoadAvgStart   string  `json:"loadavg_start,omitempty"`
	LoadAvgEnd     string  `json:"loadavg_end,omitempty"`
	StartedAt      string  `json:"started_at"`

	serverCPU time.Duration
	genCPU    time.Duration
}

func goMaxProcs() int { return runtime.GOMAXPROCS(0) }

func (r *WSReport) addOther(c *fanConn) {
	r.OtherEvents += c.otherEvents
	for k, v := range c.otherNames {
		if r.OtherEventNames == nil {
			r.OtherEventNames = map[string]int64{}
		}
		if len(r.OtherEventNames) < 50 {
			r.OtherEventNames[k] += v
		}
	}
}

// otherNames renders OtherEventNames as " (name n, ...)".
func (r WSReport) otherNames() string {
	if len(r.OtherEventNames) == 0 {
		return ""
	}
	keys := make([]string, 0, len(r.OtherEventNames))
	for k := range r.OtherEventNames {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, r.OtherEventNames[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// ReadWSReport reads the last JSON line of a file written with -json.
func ReadWSReport(path string) (WSReport, error) { return readLastJSONLine[WSReport](path) }

// reportScenario returns the "scenario" of the last JSON line of path.
func reportScenario(path string) string {
	v, _ := readLastJSONLine[struct {
		Scenario string `json:"scenario"`
	}](path)
	return v.Scenario
}

// PrintWSTable writes the human-readable report.
func PrintWSTable(w io.Writer, r WSReport) {
	title := r.Scenario
	if r.Label != "" {
		title = r.Label + " / " + r.Scenario
	}
	fmt.Fprintf(w, "== %s  target=%s\n", title, r.Target)
	fmt.Fprintf(w, "connections: %d asked (%d agents x %d), %d established, %d failed (%d refused), %d closed during the run; opened at %.0f/s (0: unpaced) in %.1fs, all joined after %.1fs; TCP connect -> roomJoined p50/p99/max = %s/%s/%s ms\n",
		r.ConnsTarget, r.Agents, r.ConnsPerAgent, r.ConnsEstablished, r.ConnsFailed, r.ConnsRefused, r.ConnsClosedDuringRun,
		r.ConnectRate, r.ConnectRampS, r.ConnectPhaseS, fmtMs(r.ConnectP50ms), fmtMs(r.ConnectP99ms), fmtMs(r.ConnectMaxms))
	if r.FirstConnFailure != "" {
		fmt.Fprintf(w, "first connection failure: %s\n", r.FirstConnFailure)
	}
	if r.FirstCloseReason != "" {
		fmt.Fprintf(w, "first close during the run: %s\n", r.FirstCloseReason)
	}
	c := r.Create
	if r.Mode == "live" {
		fmt.Fprintf(w, "job creations (open model): %.1f/s asked for %.1fs (warm-up %.1fs discarded) -> %d created (%.1f/s), %d HTTP errors, %d dropped, %d without id; HTTP p50/p99/max = %s/%s/%s ms; generator lag p99 %s ms\n",
			r.RateTarget, r.DurationS, r.WarmupS, r.JobsCreated, r.CreatesPerSec, r.CreateErrors, r.Dropped, r.BadJobIDs,
			fmtMs(c.P50ms), fmtMs(c.P99ms), fmtMs(c.Maxms), fmtMs(r.GenLagP99ms))
		fmt.Fprintf(w, "messages: expected %d (%d per creation asked = %.0f msgs/s), delivered %d, LOST %d (%d on connections closed during the run), duplicates %d, duplicate jobs %d, out of order %d, unexpected %d, misrouted %d, other events %d%s\n",
			r.Expected, r.MsgsPerCreateTarget, r.MsgRateTarget, r.Delivered, r.Lost, r.LostOnClosedConns, r.Duplicates, r.DuplicateJobs, r.OutOfOrder, r.UnexpectedMsgs, r.Misrouted, r.OtherEvents, r.otherNames())
		fmt.Fprintf(w, "delivered %.1f msgs/s over %.2fs (first -> last measured delivery); %.1f frames/s during the schedule; drain %.2fs%s\n",
			r.DeliveredPerSec, r.WindowS, r.InWindowPerSec, r.DrainS, map[bool]string{true: " (TIMED OUT: messages missing)", false: ""}[r.DrainTimedOut])
		l := r.Latency
		fmt.Fprintf(w, "delivery latency (201 received -> message received, ms; %d samples, %d negative clamped to 0): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
			l.Samples, r.NegativeClamped, fmtMs(l.P50ms), fmtMs(l.P90ms), fmtMs(l.P99ms), fmtMs(l.P999ms), fmtMs(l.Maxms), fmtMs(l.MeanMs))
		l = r.LatencyFromRequest
		fmt.Fprintf(w, "end-to-end latency (intended start of the create request -> message received, ms): p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			fmtMs(l.P50ms), fmtMs(l.P90ms), fmtMs(l.P99ms), fmtMs(l.P999ms), fmtMs(l.Maxms))
		if len(r.PerSecondSeries) > 0 {
			fmt.Fprintf(w, "frames received per second of the schedule: %v\n", r.PerSecondSeries)
		}
	} else {
		fmt.Fprintf(w, "backlog: %d jobs created before connecting (%.0f/s, %d HTTP errors) = %d events per agent\n",
			r.JobsCreated, r.CreatesPerSec, r.CreateErrors, r.BacklogPerAgent)
		fmt.Fprintf(w, "catch-up (since=0): %d of %d connections complete, %d incomplete; %d frames in %.2fs (first connect -> last complete) = %.1f msgs/s; %.2fs after the last roomJoined\n",
			r.ConnsComplete, r.ConnsEstablished, r.ConnsIncomplete, r.FramesReceived, r.CatchupS, r.DeliveredPerSec, r.TailAfterLastJoinS)
		fmt.Fprintf(w, "backlog job events: expected %d, delivered %d, LOST %d, duplicates %d, duplicate jobs %d, ORDER violations %d, unexpected %d, misrouted %d, before roomJoined %d, other events %d%s\n",
			r.Expected, r.Delivered, r.Lost, r.Duplicates, r.DuplicateJobs, r.OutOfOrder, r.UnexpectedMsgs, r.Misrouted, r.BeforeJoin, r.OtherEvents, r.otherNames())
		l := r.Latency
		fmt.Fprintf(w, "per connection, roomJoined -> whole backlog (ms): p50 %s  p90 %s  p99 %s  max %s; TCP connect -> whole backlog p50/p99/max %s/%s/%s ms\n",
			fmtMs(l.P50ms), fmtMs(l.P90ms), fmtMs(l.P99ms), fmtMs(l.Maxms), fmtMs(r.DialToCompleteP50ms), fmtMs(r.DialToCompleteP99ms), fmtMs(r.DialToCompleteMaxms))
		if r.DrainTimedOut {
			fmt.Fprintln(w, "NOTE: catch-up timed out before every connection had its backlog")
		}
	}
	srv := ""
	if r.ServerPID > 0 {
		srv = fmt.Sprintf("; server (pid %d) used %.2f cores = %.2f us CPU per message", r.ServerPID, r.ServerCPUCores, r.ServerUsPerMsg)
	}
	fmt.Fprintf(w, "generator used %.2f CPU cores (%.2f us per message, peak RSS %.0f MB)%s; load average before/after: %s / %s\n",
		r.GenCPUCores, r.GenUsPerMsg, r.GenMaxRSSMB, srv, r.LoadAvgStart, r.LoadAvgEnd)
	if r.ParseErrors > 0 {
		fmt.Fprintf(w, "PROTOCOL: %d packets could not be parsed; first: %s\n", r.ParseErrors, r.FirstParseError)
	}
	if r.BeforeJoin > 0 && r.Mode == "live" {
		fmt.Fprintf(w, "NOTE: %d events arrived before roomJoined\n", r.BeforeJoin)
	}
	if r.GenCPUCores > 0.9 {
		fmt.Fprintln(w, "NOTE: the generator used most of a core or more; on a 2-core machine it competes with the server, so latency and throughput include that contention")
	}
	if r.Interrupted {
		fmt.Fprintln(w, "NOTE: interrupted; figures cover the part that ran")
	}
}

// PrintWSCompare prints run next to base (ratio = run / base).
func PrintWSCompare(w io.Writer, title string, run, base WSReport) {
	single := base.Scenario == ""
	rl, bl := run.Label, base.Label
	if rl == "" {
		rl = "run"
	}
	if bl == "" {
		bl = "baseline"
	}
	if title == "" {
		title = rl + " / " + run.Scenario
		if !single {
			title += " vs " + bl
		}
	}
	fmt.Fprintf(w, "=== %s\n", title)
	if single {
		fmt.Fprintf(w, "%-34s %18s\n", "", trunc(rl, 18))
	} else {
		fmt.Fprintf(w, "%-34s %18s %18s %9s\n", "", trunc(rl, 18), trunc(bl, 18), "ratio")
	}
	row := func(name, a, b, ratio string) {
		if single {
			fmt.Fprintf(w, "%-34s %18s\n", name, a)
		} else {
			fmt.Fprintf(w, "%-34s %18s %18s %9s\n", name, a, b, ratio)
		}
	}
	num := func(name string, a, b float64, f string) {
		ratio := "-"
		if b != 0 {
			ratio = fmt.Sprintf("%.2fx", a/b)
		}
		row(name, fmt.Sprintf(f, a), fmt.Sprintf(f, b), ratio)
	}
	str := func(name, a, b string) { row(name, a, b, "") }
	conns := func(r WSReport) string {
		return fmt.Sprintf("%d/%d/%d", r.ConnsEstablished, r.ConnsFailed, r.ConnsClosedDuringRun)
	}
	str("conns ok / failed / closed", conns(run), conns(base))
	num("connect p99 ms", run.ConnectP99ms, base.ConnectP99ms, "%.3f")
	if run.Mode == "live" {
		num("creations/s asked", run.RateTarget, base.RateTarget, "%.1f")
		num("creations/s achieved", run.CreatesPerSec, base.CreatesPerSec, "%.1f")
		cerr := func(r WSReport) string { return fmt.Sprintf("%d/%d", r.CreateErrors, r.Dropped) }
		str("create errors / dropped", cerr(run), cerr(base))
		num("create HTTP p99 ms", run.Create.P99ms, base.Create.P99ms, "%.3f")
		num("msgs/s asked", run.MsgRateTarget, base.MsgRateTarget, "%.0f")
		num("delivered msgs/s", run.DeliveredPerSec, base.DeliveredPerSec, "%.1f")
		loss := func(r WSReport) string {
			return fmt.Sprintf("%d/%d/%d", r.Lost, r.Duplicates, r.OutOfOrder)
		}
		str("lost / dup / out of order", loss(run), loss(base))
		num("latency p50 ms", run.Latency.P50ms, base.Latency.P50ms, "%.3f")
		num("latency p90 ms", run.Latency.P90ms, base.Latency.P90ms, "%.3f")
		num("latency p99 ms", run.Latency.P99ms, base.Latency.P99ms, "%.3f")
		num("latency p99.9 ms", run.Latency.P999ms, base.Latency.P999ms, "%.3f")
		num("latency max ms", run.Latency.Maxms, base.Latency.Maxms, "%.3f")
		num("end-to-end p99 ms", run.LatencyFromRequest.P99ms, base.LatencyFromRequest.P99ms, "%.3f")
	} else {
		num("backlog events per agent", float64(run.BacklogPerAgent), float64(base.BacklogPerAgent), "%.0f")
		num("frames replayed", float64(run.FramesReceived), float64(base.FramesReceived), "%.0f")
		num("catch-up s (all connections)", run.CatchupS, base.CatchupS, "%.3f")
		num("replay msgs/s", run.DeliveredPerSec, base.DeliveredPerSec, "%.1f")
		num("tail after last join s", run.TailAfterLastJoinS, base.TailAfterLastJoinS, "%.3f")
		num("per conn join->complete p50 ms", run.Latency.P50ms, base.Latency.P50ms, "%.3f")
		num("per conn join->complete p99 ms", run.Latency.P99ms, base.Latency.P99ms, "%.3f")
		num("per conn join->complete max ms", run.Latency.Maxms, base.Latency.Maxms, "%.3f")
		loss := func(r WSReport) string {
			return fmt.Sprintf("%d/%d/%d/%d", r.ConnsIncomplete, r.Lost, r.Duplicates, r.OutOfOrder)
		}
		str("incomplete / lost / dup / order", loss(run), loss(base))
	}
	num("generator CPU cores", run.GenCPUCores, base.GenCPUCores, "%.2f")
	if run.ServerPID > 0 || base.ServerPID > 0 {
		num("server CPU cores", run.ServerCPUCores, base.ServerCPUCores, "%.2f")
		num("server CPU us per message", run.ServerUsPerMsg, base.ServerUsPerMsg, "%.2f")
	}
	if run.ParseErrors > 0 || base.ParseErrors > 0 {
		num("protocol parse errors", float64(run.ParseErrors), float64(base.ParseErrors), "%.0f")
	}
}

// cmdJSONField prints the named fields of the last JSON line of a result
// file, space-separated: numbers as written, strings unquoted, missing
// fields as "-". A dotted name (latency.p99_ms) walks into objects.
func cmdJSONField(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen jsonfield FILE FIELD...")
		return exitUsage
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "jsonfield:", err)
		return 1
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var root json.RawMessage
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &root); err != nil {
		fmt.Fprintf(os.Stderr, "jsonfield: %s: %v\n", args[0], err)
		return 1
	}
	out := make([]string, 0, len(args)-1)
	for _, k := range args[1:] {
		out = append(out, jsonPath(root, k))
	}
	fmt.Println(strings.Join(out, " "))
	return exitOK
}

func jsonPath(v json.RawMessage, path string) string {
	for _, k := range strings.Split(path, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return "-"
		}
		next, ok := m[k]
		if !ok {
			return "-"
		}
		v = next
	}
	if len(v) > 0 && v[0] == '"' {
		var s string
		json.Unmarshal(v, &s)
		return s
	}
	return string(v)
}

// maxRSSMB is this process's peak resident set size in MB.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}
