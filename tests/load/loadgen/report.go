package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Report is the machine-readable result of one run (one JSON line).
type Report struct {
	Label              string             `json:"label,omitempty"`
	Scenario           string             `json:"scenario"`
	Target             string             `json:"target"`
	Unit               string             `json:"unit"` // what one arrival is
	RateTarget         float64            `json:"rate_target"`
	RequestsPerArrival int                `json:"requests_per_arrival"`
	RequestRateTarget  float64            `json:"request_rate_target"`
	DurationS          float64            `json:"duration_s"`
	WarmupS            float64            `json:"warmup_s"`
	ElapsedS           float64            `json:"elapsed_s"` // schedule start to last completion
	Scheduled          int64              `json:"scheduled"`
	Launched           int64              `json:"launched"`
	Dropped            int64              `json:"dropped"`
	DrainCancelled     bool               `json:"drain_cancelled"`
	Interrupted        bool               `json:"interrupted"`
	ArrivalsPerSec     float64            `json:"arrivals_per_sec"` // launched / elapsed
	Conns              int                `json:"conns"`
	Client             string             `json:"client"`
	MaxInFlight        int                `json:"max_inflight"`
	TimeoutS           float64            `json:"timeout_s"`
	GenLagP50ms        float64            `json:"gen_lag_p50_ms"`
	GenLagP99ms        float64            `json:"gen_lag_p99_ms"`
	GenLagMaxms        float64            `json:"gen_lag_max_ms"`
	Steps              []Summary          `json:"steps"`
	Iteration          *Summary           `json:"iteration,omitempty"`
	Overall            Summary            `json:"overall"`
	WritesPerArrival   int                `json:"writes_per_arrival,omitempty"`
	Transitions        int64              `json:"durable_transitions,omitempty"`
	TransitionsPerS    float64            `json:"durable_transitions_per_s,omitempty"`
	TransitionsTarget  float64            `json:"durable_transitions_target_per_s,omitempty"`
	Setup              map[string]any     `json:"setup,omitempty"`
	ServerCPUms        map[string]float64 `json:"server_cpu_ms,omitempty"`
	GoMaxProcs         int                `json:"gomaxprocs"`
	GenCPUCores        float64            `json:"generator_cpu_cores"` // loadgen's own CPU time / elapsed
	LoadAvgStart       string             `json:"loadavg_start,omitempty"`
	LoadAvgEnd         string             `json:"loadavg_end,omitempty"`
	StartedAt          string             `json:"started_at"`
}

// BuildReport turns the recorders and the scheduler result into a Report.
func BuildReport(sc Scenario, cfg *Config, m *Metrics, res SchedResult, env RunEnv) Report {
	elapsed := res.Elapsed(cfg.Duration)
	r := Report{
		Label:              cfg.Label,
		Scenario:           sc.Name(),
		Target:             cfg.URL,
		Unit:               sc.Unit(),
		RateTarget:         cfg.Rate,
		RequestsPerArrival: sc.RequestsPerArrival(),
		RequestRateTarget:  cfg.Rate * float64(sc.RequestsPerArrival()),
		DurationS:          cfg.Duration.Seconds(),
		WarmupS:            cfg.Warmup.Seconds(),
		ElapsedS:           elapsed.Seconds(),
		Scheduled:          res.Scheduled,
		Launched:           res.Launched,
		Dropped:            res.Dropped,
		DrainCancelled:     res.Cancelled,
		Interrupted:        res.Interrupted,
		ArrivalsPerSec:     float64(res.Launched) / elapsed.Seconds(),
		Conns:              cfg.Conns,
		Client:             cfg.Client,
		MaxInFlight:        cfg.MaxInFlight,
		TimeoutS:           cfg.Timeout.Seconds(),
		Setup:              sc.Describe(),
		GoMaxProcs:         runtime.GOMAXPROCS(0),
		StartedAt:          res.Start.UTC().Format(time.RFC3339),
		GenCPUCores:        env.CPU.Seconds() / elapsed.Seconds(),
		ServerCPUms:        env.ServerCPUms,
		LoadAvgStart:       env.LoadStart,
		LoadAvgEnd:         env.LoadEnd,
	}
	var lag Summary
	FillLatency(&lag, res.LagNs)
	r.GenLagP50ms, r.GenLagP99ms, r.GenLagMaxms = lag.P50ms, lag.P99ms, lag.Maxms
	for _, s := range m.Steps {
		r.Steps = append(r.Steps, Summarize(s.Name, elapsed, res.Dropped, s))
	}
	r.Overall = Summarize("ALL requests", elapsed, res.Dropped, m.Steps...)
	if m.Iter != nil {
		it := Summarize("iteration", elapsed, res.Dropped, m.Iter)
		r.Iteration = &it
	}
	if w := sc.WritesPerArrival(); w > 0 {
		r.WritesPerArrival = w
		for _, s := range r.Steps {
			r.Transitions += s.OK // every step of a write scenario is a state-changing POST
		}
		r.TransitionsPerS = float64(r.Transitions) / elapsed.Seconds()
		r.TransitionsTarget = cfg.Rate * float64(w)
	}
	return r
}

func fmtMs(v float64) string { return fmt.Sprintf("%.3f", v) }

// PrintTable writes the human-readable report.
func PrintTable(w io.Writer, r Report) {
	title := r.Scenario
	if r.Label != "" {
		title = r.Label + " / " + r.Scenario
	}
	fmt.Fprintf(w, "== %s  target=%s\n", title, r.Target)
	fmt.Fprintf(w, "open model: %.1f %ss/s for %.1fs (warm-up %.1fs discarded); scheduled=%d launched=%d dropped=%d (max-inflight=%d) conns=%d client=%s\n",
		r.RateTarget, r.Unit, r.DurationS, r.WarmupS, r.Scheduled, r.Launched, r.Dropped, r.MaxInFlight, r.Conns, r.Client)
	fmt.Fprintf(w, "elapsed %.2fs (schedule start -> last completion); achieved %.1f %ss/s; generator lag p50/p99/max = %s/%s/%s ms\n",
		r.ElapsedS, r.ArrivalsPerSec, r.Unit, fmtMs(r.GenLagP50ms), fmtMs(r.GenLagP99ms), fmtMs(r.GenLagMaxms))
	fmt.Fprintf(w, "generator used %.2f CPU cores; load average before/after: %s / %s\n", r.GenCPUCores, r.LoadAvgStart, r.LoadAvgEnd)
	fmt.Fprintln(w, "latency = from the INTENDED start (ms); per/s = completed calls / elapsed")
	hdr := fmt.Sprintf("%-13s %9s %9s %8s %7s %8s %10s %10s %9s %9s %9s %9s %9s",
		"step", "count", "2xx", "non2xx", "errors", "dropped", "req/s", "2xx/s", "p50", "p90", "p99", "p99.9", "max")
	fmt.Fprintln(w, hdr)
	fmt.Fprintln(w, strings.Repeat("-", len(hdr)))
	row := func(s Summary) {
		fmt.Fprintf(w, "%-13s %9d %9d %8d %7d %8d %10.1f %10.1f %9s %9s %9s %9s %9s\n",
			s.Name, s.Count, s.OK, s.Non2xx, s.Errors, s.Dropped, s.PerSec, s.OKPerSec,
			fmtMs(s.P50ms), fmtMs(s.P90ms), fmtMs(s.P99ms), fmtMs(s.P999ms), fmtMs(s.Maxms))
	}
	if len(r.Steps) > 1 {
		for _, s := range r.Steps {
			row(s)
		}
	}
	row(r.Overall)
	if r.Iteration != nil {
		row(*r.Iteration)
	}
	if r.WritesPerArrival > 0 {
		fmt.Fprintf(w, "durable transitions: %d (%d per %s) = %.1f/s (target %.1f/s)\n",
			r.Transitions, r.WritesPerArrival, r.Unit, r.TransitionsPerS, r.TransitionsTarget)
	}
	if r.Iteration != nil {
		fmt.Fprintln(w, "(iteration row: 2xx = walk-throughs completed, latency from intended start to last response; non2xx/errors = aborted walk-throughs)")
	}
	if r.GenLagP99ms > 1 {
		fmt.Fprintf(w, "NOTE: generator lag p99 %.3f ms > 1 ms: the load generator itself fell behind (CPU-starved?); latency figures include that delay\n", r.GenLagP99ms)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "NOTE: interrupted before the end of the schedule; figures cover the part that ran")
	}
	if r.DrainCancelled {
		fmt.Fprintln(w, "NOTE: in-flight work was cancelled at the end of the drain period (counted as errors)")
	}
	if len(r.Overall.Non2xxByStatus) > 0 {
		fmt.Fprintf(w, "non-2xx by status: %s\n", StatusBreakdown(r.Overall.Non2xxByStatus))
		if len(r.Steps) > 1 {
			for _, s := range r.Steps {
				if len(s.Non2xxByStatus) > 0 {
					fmt.Fprintf(w, "  [%s] %s\n", s.Name, StatusBreakdown(s.Non2xxByStatus))
				}
			}
		}
	}
	fails := []Summary{}
	fails = append(fails, r.Steps...)
	if r.Iteration != nil {
		fails = append(fails, *r.Iteration)
	}
	for _, s := range fails {
		if s.FirstFailure != "" {
			fmt.Fprintf(w, "first failure [%s]: %s\n", s.Name, s.FirstFailure)
		}
	}
}

// WriteJSON writes a report (Report or WSReport) as a single JSON line.
// WriteJSONFile writes r as WriteJSON does to the file at path (a -json flag);
// a failure is reported on stderr under the program's name, not fatal.
func WriteJSONFile(path, program string, r any) {
	if path == "" {
		return
	}
	fh, err := os.Create(path)
	if err == nil {
		err = WriteJSON(fh, r)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: writing -json: %v\n", program, err)
	}
}

func WriteJSON(w io.Writer, r any) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readLastJSONLine decodes the last JSON line of a file written with -json.
func readLastJSONLine[T any](path string) (T, error) {
	var r T
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return r, fmt.Errorf("%s: %v", path, err)
	}
	return r, nil
}

// ReadReport reads the last JSON line of a file written with -json.
func ReadReport(path string) (Report, error) { return readLastJSONLine[Report](path) }

// PrintCompare prints run next to baseline with ratios (run / baseline).
func PrintCompare(w io.Writer, title string, run, base Report) {
	single := base.Scenario == "" // no baseline: one column
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	rl, bl := run.Label, base.Label
	if rl == "" {
		rl = run.Scenario
	}
	if bl == "" {
		bl = base.Scenario
	}
	if title == "" {
		title = fmt.Sprintf("%s / %s vs %s / %s", rl, run.Scenario, bl, base.Scenario)
		if single {
			title = rl + " / " + run.Scenario
		}
	}
	fmt.Fprintf(w, "=== %s\n", title)
	if single {
		fmt.Fprintf(w, "%-26s %16s\n", "per HTTP request", trunc(rl, 16))
	} else {
		fmt.Fprintf(w, "%-26s %16s %16s %10s\n", "per HTTP request", trunc(rl, 16), trunc(bl, 16), "ratio")
	}
	line := func(name string, a, b float64, f string) {
		if single {
			fmt.Fprintf(w, "%-26s %16s\n", name, fmt.Sprintf(f, a))
			return
		}
		fmt.Fprintf(w, "%-26s %16s %16s %10s\n", name, fmt.Sprintf(f, a), fmt.Sprintf(f, b), ratio(a, b))
	}
	ro, bo := run.Overall, base.Overall
	line("target req/s", run.RequestRateTarget, base.RequestRateTarget, "%.1f")
	line("achieved req/s", ro.PerSec, bo.PerSec, "%.1f")
	line("achieved 2xx/s", ro.OKPerSec, bo.OKPerSec, "%.1f")
	errs := func(s Summary, r Report) string { return fmt.Sprintf("%d/%d/%d", s.Non2xx, s.Errors, r.Dropped) }
	if single {
		fmt.Fprintf(w, "%-26s %16s\n", "non2xx / errors / dropped", errs(ro, run))
	} else {
		fmt.Fprintf(w, "%-26s %16s %16s\n", "non2xx / errors / dropped", errs(ro, run), errs(bo, base))
	}
	if len(ro.Non2xxByStatus) > 0 {
		fmt.Fprintf(w, "%-26s %16s\n", "non2xx by status", StatusBreakdown(ro.Non2xxByStatus))
	}
	line("p50 ms", ro.P50ms, bo.P50ms, "%.3f")
	line("p90 ms", ro.P90ms, bo.P90ms, "%.3f")
	line("p99 ms", ro.P99ms, bo.P99ms, "%.3f")
	line("p99.9 ms", ro.P999ms, bo.P999ms, "%.3f")
	line("max ms", ro.Maxms, bo.Maxms, "%.3f")
	line("generator lag p99 ms", run.GenLagP99ms, base.GenLagP99ms, "%.3f")
	if run.WritesPerArrival > 0 {
		fmt.Fprintf(w, "%-26s %16.1f   (target %.1f/s)\n", "durable transitions/s", run.TransitionsPerS, run.TransitionsTarget)
	}
	if run.Iteration == nil && len(run.Steps) > 1 {
		// Independent single-request arrivals of several kinds (e.g. thread-negotiation): each kind's share.
		for _, s := range run.Steps {
			fmt.Fprintf(w, "%-26s %16s   (p50/p99/p99.9 %s/%s/%s ms; non2xx/errors %d/%d)\n", "  "+trunc(s.Name, 16)+" 2xx/s",
				fmt.Sprintf("%.1f", s.OKPerSec), fmtMs(s.P50ms), fmtMs(s.P99ms), fmtMs(s.P999ms), s.Non2xx, s.Errors)
		}
	}
	if run.Iteration != nil {
		it := run.Iteration
		fmt.Fprintf(w, "%-26s %16s   (p50/p99/p99.9 %s/%s/%s ms)\n", "walk-throughs ok/aborted",
			fmt.Sprintf("%d/%d", it.OK, it.Non2xx+it.Errors), fmtMs(it.P50ms), fmtMs(it.P99ms), fmtMs(it.P999ms))
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// RunEnv is what the machine looked like during a measurement.
type RunEnv struct {
	CPU time.Duration // CPU time (user+system) this process used
	// CPU time (ms) of the -cpu-pids processes over the measured schedule, per label
	ServerCPUms map[string]float64
	LoadStart   string // /proc/loadavg 1/5/15-minute figures
	LoadEnd     string
}

// LoadAvg returns the 1, 5 and 15 minute load averages ("" if unknown).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ProcessCPU returns this process's user+system CPU time so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
