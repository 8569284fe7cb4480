package main

// The analysis and report of `loadgen webhooks`: per channel (socket.io,
// webhook) what was expected, delivered, missing and duplicated, the
// latency from each write's response to the arrival of its event, and the
// webhook/socket.io ratio per percentile (socket.io is the in-run baseline).

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

const (
	chSocket = iota
	chWebhook
)

var whChannelNames = [2]string{"socket.io", "webhook"}

// typeMessagePosted is the event every measured write makes.
const typeMessagePosted = "thread.message_posted"

// whWrite is one 2xx message write: its message id (in the event's data),
// when its answer was read and when it was due (ns since the run's base),
// and the two agents its event goes to (the thread's requester and provider).
type whWrite struct {
	msgID              string
	respNs, intendedNs int64
	a, b               int32
	warm               bool
}

// whArrival is one event received on a channel: the agent it came for, its
// CloudEvent id (socket.io: the payload's cloudevent_id; webhook: the
// webhook-id header), the message id of its data, its type and agent-log
// event_id, and the receipt time (ns since the run's base).
type whArrival struct {
	agent   int32
	ceid    string
	msgID   string
	typ     string
	eventID int64
	t       int64
}

// WHChannel is the result of one delivery channel.
type WHChannel struct {
	Name            string           `json:"name"`
	Expected        int64            `json:"expected"`  // 2 per measured 2xx write (requester + provider)
	Delivered       int64            `json:"delivered"` // distinct (agent, CloudEvent id) of those
	Missing         int64            `json:"missing"`
	Duplicates      int64            `json:"duplicates"`   // the same (agent, CloudEvent id) again, warm-up included
	OutOfOrder      int64            `json:"out_of_order"` // an event_id lower than one received before for that agent
	Unmatched       int64            `json:"unmatched"`    // thread.message_posted of no write of this run
	Misrouted       int64            `json:"misrouted"`    // to an agent that is not a member of the write's thread
	OtherEvents     int64            `json:"other_events"`
	OtherEventNames map[string]int64 `json:"other_event_names,omitempty"`
	NegativeClamped int64            `json:"negative_clamped"`
	WindowS         float64          `json:"window_s"`
	PerSec          float64          `json:"delivered_per_sec"`
	Latency         Summary          `json:"latency"`    // write's 2xx read -> arrival
	EndToEnd        Summary          `json:"end_to_end"` // write's intended start -> arrival
	Received        int64            `json:"received"`   // every event frame / delivery on this channel
}

// WHRatio holds a / b per percentile (0: undefined, b was 0).
type WHRatio struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func ratioOf(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// latencyRatio compares two latency summaries percentile by percentile.
func latencyRatio(a, b Summary) WHRatio {
	return WHRatio{P50: ratioOf(a.P50ms, b.P50ms), P90: ratioOf(a.P90ms, b.P90ms),
		P99: ratioOf(a.P99ms, b.P99ms), Max: ratioOf(a.Maxms, b.Maxms)}
}

// WHFloor is one in-run floor: signed POSTs loadgen -> its own receiver.
type WHFloor struct {
	Mode      string  `json:"mode"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`
	BodyBytes int     `json:"body_bytes"`
	HTTP      Summary `json:"http"` // intended start -> response read
}

// WHReport is the machine-readable result of one run (one JSON line).
type WHReport struct {
	Label      string  `json:"label,omitempty"`
	Scenario   string  `json:"scenario"` // webhooks
	Target     string  `json:"target"`
	Receiver   string  `json:"receiver"`
	ServerNote string  `json:"server_note,omitempty"`
	Agents     int     `json:"agents"`
	RateTarget float64 `json:"rate_target"` // writes/s
	DurationS  float64 `json:"duration_s"`
	WarmupS    float64 `json:"warmup_s"`
	Scheduled  int64   `json:"scheduled"`
	Dropped    int64   `json:"dropped"`
	Writes     Summary `json:"writes_http"`
	WritesNoID int64   `json:"writes_without_message_id"`

	Socket        WHChannel `json:"socketio"`
	Webhook       WHChannel `json:"webhook"`
	Ratio         WHRatio   `json:"ratio_webhook_socketio"`
	Paired        Summary   `json:"paired_webhook_minus_socketio"` // per event received on both: webhook t - socket t
	WebhookFirst  int64     `json:"paired_webhook_first"`
	CEIDConflicts int64     `json:"cloudevent_id_conflicts"` // one message with two CloudEvent ids (or the reverse) across the channels

	SocketsJoined      int     `json:"sockets_joined"`
	SocketsClosed      int64   `json:"sockets_closed_during_run"`
	FirstSocketClose   string  `json:"first_socket_close,omitempty"`
	Verified           int64   `json:"webhook_verified"`
	BadSignatures      int64   `json:"webhook_refused"` // answered 401: signature, timestamp or headers
	FirstBadSignature  string  `json:"first_webhook_refusal,omitempty"`
	WebhookIDMismatch  int64   `json:"webhook_id_not_body_cloudevent_id"`
	WebhookBadBodies   int64   `json:"webhook_bad_bodies"`
	ServerAttemptsOK   int64   `json:"server_webhook_delivered"` // /metrics delta over the measurement
	ServerAttemptsFail int64   `json:"server_webhook_failed"`
	ServerAttemptMs    float64 `json:"server_webhook_attempt_mean_ms"`

	Floors     []WHFloor `json:"floors"`
	RatioFloor WHRatio   `json:"ratio_webhook_floor"` // webhook latency / the first floor's

	DrainS         float64 `json:"drain_s"`
	DrainTimedOut  bool    `json:"drain_timed_out"`
	Interrupted    bool    `json:"interrupted"`
	GenCPUCores    float64 `json:"generator_cpu_cores"`
	GenLagP99ms    float64 `json:"gen_lag_p99_ms"`
	ServerPID      int     `json:"server_pid,omitempty"`
	ServerCPUCores float64 `json:"server_cpu_cores,omitempty"`
	LoadAvgStart   string  `json:"loadavg_start,omitempty"`
	LoadAvgEnd     string  `json:"loadavg_end,omitempty"`
	StartedAt      string  `json:"started_at"`
}

type agentCE struct {
	agent int32
	ceid  string
}

// whAnalysis is what analyzeWH derives from the writes and the arrivals.
type whAnalysis struct {
	ch            [2]WHChannel
	paired        Summary
	webhookFirst  int64
	ceidConflicts int64
}

// analyzeWH matches every measured write with its event on each channel.
// A write's event is found through its message id (in the event's data),
// which gives its CloudEvent id; the channels are then matched on
// (agent, CloudEvent id): the webhook's webhook-id header and the socket
// payload's cloudevent_id. duration is the measured schedule's length (the
// floor of the throughput window).
func analyzeWH(writes []whWrite, arr [2][]whArrival, duration time.Duration) whAnalysis {
	var out whAnalysis
	byMsg := make(map[string]*whWrite, len(writes))
	for i := range writes {
		byMsg[writes[i].msgID] = &writes[i]
	}
	// message id <-> CloudEvent id, from both channels.
	msgCE := map[string]string{}
	ceMsg := map[string]string{}
	for c := range arr {
		for _, a := range arr[c] {
			if a.typ != typeMessagePosted || a.msgID == "" || a.ceid == "" {
				continue
			}
			if ce, ok := msgCE[a.msgID]; !ok {
				msgCE[a.msgID] = a.ceid
			} else if ce != a.ceid {
				out.ceidConflicts++
			}
			if m, ok := ceMsg[a.ceid]; !ok {
				ceMsg[a.ceid] = a.msgID
			} else if m != a.msgID {
				out.ceidConflicts++
			}
		}
	}
	var first [2]map[agentCE]int64
	for c := range arr {
		ch := &out.ch[c]
		ch.Name = whChannelNames[c]
		ch.Received = int64(len(arr[c]))
		first[c] = map[agentCE]int64{}
		last := map[int32]int64{}
		for _, a := range arr[c] {
			if a.eventID >= 0 {
				if l, ok := last[a.agent]; ok && a.eventID < l {
					ch.OutOfOrder++
				} else {
					last[a.agent] = a.eventID
				}
			}
			if a.typ != typeMessagePosted {
				ch.OtherEvents++
				if ch.OtherEventNames == nil {
					ch.OtherEventNames = map[string]int64{}
				}
				if len(ch.OtherEventNames) < 50 {
					ch.OtherEventNames[a.typ]++
				}
				continue
			}
			w, ok := byMsg[a.msgID]
			if !ok {
				ch.Unmatched++
				continue
			}
			if a.agent != w.a && a.agent != w.b {
				ch.Misrouted++
				continue
			}
			k := agentCE{a.agent, a.ceid}
			if _, seen := first[c][k]; seen {
				ch.Duplicates++
				continue
			}
			first[c][k] = a.t
		}
	}
	var lats, e2es [2][]int64
	var lo, hi [2]int64
	lo = [2]int64{-1, -1}
	var diffs []int64
	for i := range writes {
		w := &writes[i]
		if w.warm {
			continue
		}
		ce := msgCE[w.msgID]
		for _, agent := range [2]int32{w.a, w.b} {
			var ts [2]int64
			var got [2]bool
			for c := range out.ch {
				out.ch[c].Expected++
				if ce == "" {
					continue
				}
				t, ok := first[c][agentCE{agent, ce}]
				if !ok {
					continue
				}
				ts[c], got[c] = t, true
				out.ch[c].Delivered++
				lat := t - w.respNs
				if lat < 0 {
					out.ch[c].NegativeClamped++
					lat = 0
				}
				lats[c] = append(lats[c], lat)
				e2es[c] = append(e2es[c], t-w.intendedNs)
				if lo[c] < 0 || t < lo[c] {
					lo[c] = t
				}
				if t > hi[c] {
					hi[c] = t
				}
			}
			if got[chSocket] && got[chWebhook] {
				d := ts[chWebhook] - ts[chSocket]
				diffs = append(diffs, d)
				if d < 0 {
					out.webhookFirst++
				}
			}
		}
	}
	for c := range out.ch {
		ch := &out.ch[c]
		ch.Missing = ch.Expected - ch.Delivered
		FillLatency(&ch.Latency, lats[c])
		ch.Latency.Name = "write 2xx -> arrival"
		ch.Latency.Count = int64(len(lats[c]))
		FillLatency(&ch.EndToEnd, e2es[c])
		ch.EndToEnd.Name = "write intended start -> arrival"
		ch.EndToEnd.Count = int64(len(e2es[c]))
		// The arrivals of a D-second schedule spread over about D seconds:
		// the rate over first -> last measured arrival, never over less than
		// half the schedule (a handful of arrivals cannot make a huge rate).
		window := time.Duration(hi[c] - lo[c])
		if lo[c] < 0 || window < duration/2 {
			window = duration
		}
		if window > 0 {
			ch.WindowS = window.Seconds()
			ch.PerSec = float64(ch.Delivered) / window.Seconds()
		}
	}
	FillLatency(&out.paired, diffs)
	out.paired.Name = "webhook - socket.io"
	out.paired.Count = int64(len(diffs))
	return out
}

// fmtRatio renders a ratio ("-" when undefined).
func fmtRatio(v float64) string {
	if v <= 0 {
		return "-"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0fx", v)
	}
	return fmt.Sprintf("%.2fx", v)
}

func otherNamesString(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s x %d", n, m[n])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// PrintWHTable writes the human-readable report.
func PrintWHTable(w io.Writer, r WHReport) {
	title := "webhooks vs socket.io"
	if r.Label != "" {
		title = r.Label + " / " + title
	}
	fmt.Fprintf(w, "== %s  target=%s  receiver=%s\n", title, r.Target, r.Receiver)
	if r.ServerNote != "" {
		fmt.Fprintf(w, "server: %s\n", r.ServerNote)
	}
	fmt.Fprintf(w, "agents: %d, each with 1 socket.io connection (%d joined) and 1 webhook endpoint (event_types [%s]); thread i: agent i -> agent i+1's service\n",
		r.Agents, r.SocketsJoined, typeMessagePosted)
	wr := r.Writes
	fmt.Fprintf(w, "writes (POST /api/agent/threads/{id}/messages, open model): %.1f/s asked for %.1fs (warm-up %.1fs discarded): %d 2xx, %d non-2xx, %d errors, %d dropped, %d without message id; HTTP p50/p99/max = %s/%s/%s ms; generator lag p99 %s ms\n",
		r.RateTarget, r.DurationS, r.WarmupS, wr.OK, wr.Non2xx, wr.Errors, r.Dropped, r.WritesNoID,
		fmtMs(wr.P50ms), fmtMs(wr.P99ms), fmtMs(wr.Maxms), fmtMs(r.GenLagP99ms))
	if wr.FirstFailure != "" {
		fmt.Fprintf(w, "first failed write: %s\n", wr.FirstFailure)
	}
	fmt.Fprintf(w, "each 2xx write = one %s to 2 agents (requester, provider): %.0f deliveries/s asked per channel\n",
		typeMessagePosted, 2*r.RateTarget)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "latency = the write's 2xx read -> the event's arrival, ms\n")
	fmt.Fprintf(w, "%-40s %8s %9s %7s %5s %5s %8s %9s %9s %9s %9s\n",
		"channel", "expected", "delivered", "missing", "dup", "order", "deliv/s", "p50", "p90", "p99", "max")
	for _, c := range []WHChannel{r.Socket, r.Webhook} {
		l := c.Latency
		fmt.Fprintf(w, "%-40s %8d %9d %7d %5d %5d %8.1f %9s %9s %9s %9s\n",
			c.Name, c.Expected, c.Delivered, c.Missing, c.Duplicates, c.OutOfOrder, c.PerSec,
			fmtMs(l.P50ms), fmtMs(l.P90ms), fmtMs(l.P99ms), fmtMs(l.Maxms))
	}
	rt := r.Ratio
	fmt.Fprintf(w, "%-40s %8s %9s %7s %5s %5s %8s %9s %9s %9s %9s\n",
		"ratio webhook / socket.io", "", "", "", "", "", "", fmtRatio(rt.P50), fmtRatio(rt.P90), fmtRatio(rt.P99), fmtRatio(rt.Max))
	for _, f := range r.Floors {
		l := f.HTTP
		fmt.Fprintf(w, "%-40s %8d %9d %7d %5s %5s %8.1f %9s %9s %9s %9s\n",
			"floor: signed POST, "+f.Mode, l.Count, l.OK, l.Count-l.OK, "", "", l.OKPerSec,
			fmtMs(l.P50ms), fmtMs(l.P90ms), fmtMs(l.P99ms), fmtMs(l.Maxms))
	}
	if len(r.Floors) > 0 {
		rf := r.RatioFloor
		fmt.Fprintf(w, "%-40s %8s %9s %7s %5s %5s %8s %9s %9s %9s %9s\n",
			"ratio webhook / floor ("+r.Floors[0].Mode+")", "", "", "", "", "", "", fmtRatio(rf.P50), fmtRatio(rf.P90), fmtRatio(rf.P99), fmtRatio(rf.Max))
	}
	fmt.Fprintln(w)
	for _, c := range []WHChannel{r.Socket, r.Webhook} {
		e := c.EndToEnd
		fmt.Fprintf(w, "%s: end-to-end (write's intended start -> arrival) p50/p90/p99/max = %s/%s/%s/%s ms; %d negative clamped; %d received in all, %d unmatched, %d misrouted, %d other events%s; throughput over %.2fs\n",
			c.Name, fmtMs(e.P50ms), fmtMs(e.P90ms), fmtMs(e.P99ms), fmtMs(e.Maxms), c.NegativeClamped,
			c.Received, c.Unmatched, c.Misrouted, c.OtherEvents, otherNamesString(c.OtherEventNames), c.WindowS)
	}
	p := r.Paired
	fmt.Fprintf(w, "per event received on both (%d): webhook arrival - socket.io arrival p50/p90/p99/max = %s/%s/%s/%s ms; the webhook came first %d times\n",
		p.Count, fmtMs(p.P50ms), fmtMs(p.P90ms), fmtMs(p.P99ms), fmtMs(p.Maxms), r.WebhookFirst)
	fmt.Fprintf(w, "webhook signatures: %d verified (HMAC-SHA256, Standard Webhooks), %d refused%s; webhook-id != body cloudevent_id: %d; unreadable bodies: %d; CloudEvent id conflicts between channels: %d\n",
		r.Verified, r.BadSignatures, map[bool]string{true: " (first: " + r.FirstBadSignature + ")", false: ""}[r.FirstBadSignature != ""],
		r.WebhookIDMismatch, r.WebhookBadBodies, r.CEIDConflicts)
	if r.ServerAttemptsOK+r.ServerAttemptsFail > 0 {
		fmt.Fprintf(w, "server /metrics over the measurement: %d webhook attempts delivered, %d failed, mean attempt %s ms (the server's own timing of the POST)\n",
			r.ServerAttemptsOK, r.ServerAttemptsFail, fmtMs(r.ServerAttemptMs))
	}
	fmt.Fprintf(w, "drain %.2fs%s; sockets closed during the run: %d%s\n", r.DrainS,
		map[bool]string{true: " (TIMED OUT: deliveries missing)", false: ""}[r.DrainTimedOut],
		r.SocketsClosed, map[bool]string{true: " (first: " + r.FirstSocketClose + ")", false: ""}[r.FirstSocketClose != ""])
	srv := ""
	if r.ServerPID > 0 {
		srv = fmt.Sprintf("; server (pid %d) %.2f cores", r.ServerPID, r.ServerCPUCores)
	}
	fmt.Fprintf(w, "generator used %.2f CPU cores%s; load average before/after: %s / %s\n", r.GenCPUCores, srv, r.LoadAvgStart, r.LoadAvgEnd)
	if r.GenLagP99ms > 1 {
		fmt.Fprintln(w, "NOTE: generator lag p99 above 1 ms: the generator was short of CPU (a busy machine); both channels' arrivals are timed by the same starved process")
	}
	if r.Interrupted {
		fmt.Fprintln(w, "NOTE: interrupted; figures cover the part that ran")
	}
}
