// Command loadgen is agentlancer's open-model HTTP load generator.
//
//	loadgen -scenario get204|job-get|job-create|provider-flow|thread-negotiation|thread-list|offer-flow|contract-status -url http://127.0.0.1:PORT[/path] -rate N -duration D [flags]
//	loadgen compare -run run.json -base baseline.json [-title T]
//	loadgen wait -url http://127.0.0.1:PORT/readyz [-timeout 60s] [-pid N]
//	loadgen freeport
//	loadgen steps      # HTTP calls per provider-flow iteration
//	loadgen wsfanout -url http://127.0.0.1:PORT -mode live|catchup [flags]   # notifier WebSocket fan-out
//	loadgen wsbaseline -addr 127.0.0.1:PORT                                # in-memory ceiling for wsfanout
//	loadgen webhooks -url http://127.0.0.1:PORT [-agents 20 -rate 50 ...]   # webhook vs socket.io delivery
//	loadgen jsonfield FILE FIELD...   # top-level fields of a -json result, space-separated (for scripts)
//
// Only loopback targets are accepted. See ../README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config holds the run flags.
type Config struct {
	Scenario    string
	URL         string
	Rate        float64
	Duration    time.Duration
	Warmup      time.Duration
	CPUPids     string // file of "label pid" lines: their CPU time over the measured schedule
	MetricsURLs string // where /metrics is read to settle (default: URL); comma-separated, summed
	Conns       int
	MaxInFlight int
	Timeout     time.Duration
	Drain       time.Duration
	Jobs        int
	Phase       string
	Pairs       int
	Agents      int    // thread-list
	PerAgent    int    // thread-list: threads opened by each agent
	ListMode    string // thread-list
	ThreadState string // thread-list
	SetupConc   int
	JSONPath    string
	Label       string
	Client      string

	LockedThreads int // offer-flow: locked threads made in setup (0: enough for the run)
	Contracts     int // contract-status: contracts made in setup
	Settle        time.Duration
	SetupTimeout  time.Duration
}

const (
	exitOK    = 0
	exitUsage = 2
	exitSetup = 3
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "compare":
			os.Exit(cmdCompare(os.Args[2:]))
		case "wait":
			os.Exit(cmdWait(os.Args[2:]))
		case "freeport":
			os.Exit(cmdFreePort())
		case "steps":
			// HTTP calls (= durable writes) per provider-flow iteration.
			fmt.Println((&ProviderFlow{}).RequestsPerArrival())
			os.Exit(exitOK)
		case "run":
			os.Exit(cmdRun(os.Args[2:]))
		case "wsfanout":
			os.Exit(cmdWSFanout(os.Args[2:]))
		case "wsbaseline":
			os.Exit(cmdWSBaseline(os.Args[2:]))
		case "webhooks":
			os.Exit(cmdWebhooks(os.Args[2:]))
		case "jsonfield":
			os.Exit(cmdJSONField(os.Args[2:]))
		}
	}
	os.Exit(cmdRun(os.Args[1:]))
}

func cmdRun(args []string) int {
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&cfg.Scenario, "scenario", "get204", "get204 | job-get | job-create | provider-flow | thread-negotiation | thread-list | offer-flow | contract-status")
	fs.StringVar(&cfg.URL, "url", "", "target: full URL for get204, API base URL otherwise (loopback only)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "arrivals per second (requests for get204/job-get/thread-list/contract-status, writes for thread-negotiation/offer-flow, walk-through iterations for provider-flow)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured schedule")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured schedule at the same rate before the measured one")
	fs.StringVar(&cfg.CPUPids, "cpu-pids", "", "file of `label pid` lines: the CPU time (user+system) each label's processes used during the measured schedule goes into the JSON (server_cpu_ms)")
	fs.IntVar(&cfg.Conns, "conns", 256, "max keep-alive connections in the pool")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 10000, "max concurrently running arrivals; beyond it arrivals are dropped (counted), the schedule never waits")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.DurationVar(&cfg.Drain, "drain", 15*time.Second, "after the schedule, wait at most this long for in-flight work, then cancel it")
	fs.IntVar(&cfg.Jobs, "jobs", 1000, "job-get: number of jobs created in setup")
	fs.StringVar(&cfg.Phase, "setup-phase", "negotiated", "job-get: phase the jobs are moved to ("+strings.Join(phaseNames, "|")+")")
	fs.IntVar(&cfg.Pairs, "pairs", 20, "provider-flow, thread-negotiation, offer-flow, contract-status: number of pre-signed-up client/provider (requester/provider) pairs")
	fs.IntVar(&cfg.Agents, "agents", 200, "thread-list: agents signed up in setup, each with one service")
	fs.IntVar(&cfg.PerAgent, "threads-per-agent", 5, "thread-list: threads each agent opens (on the next agents' services) in setup")
	fs.StringVar(&cfg.ListMode, "list-mode", "mixed", "thread-list: "+strings.Join(listModes, "|")+" (mixed: outgoing and incoming alternately; all: no mode parameter)")
	fs.StringVar(&cfg.ThreadState, "thread-state", "quoted", "thread-list: state the setup leaves the threads in ("+strings.Join(threadStates, "|")+")")
	fs.IntVar(&cfg.LockedThreads, "locked-threads", 0, "offer-flow: quote_locked threads made in setup (0: rate x (warmup+duration) / 2 + 5% + rate)")
	fs.IntVar(&cfg.Contracts, "contracts", 1000, "contract-status: contracts (accepted offers) made in setup")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 5*time.Minute, "limit of the (untimed) setup")
	fs.IntVar(&cfg.SetupConc, "setup-concurrency", 8, "concurrent requests during (untimed) setup")
	fs.StringVar(&cfg.MetricsURLs, "metrics-urls", "", "base URLs whose /metrics tell when the setup has settled, comma-separated and summed (default: -url; behind a gateway: every replica)")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "after setup, wait until /metrics shows every outbox published and consumers quiet for this long (0: do not wait)")
	fs.StringVar(&cfg.JSONPath, "json", "", "also write the JSON result line to this file")
	fs.StringVar(&cfg.Client, "client", "fast", "HTTP client: fast (built-in lean HTTP/1.1 keep-alive client) or std (net/http: ~1.5x the CPU, ~2x the floor latency)")
	fs.StringVar(&cfg.Label, "label", "", "free-form label stored in the report (e.g. nginx, agentlancer)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if cfg.URL == "" || cfg.Rate <= 0 || cfg.Duration <= 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -url, -rate > 0 and -duration > 0 are required")
		return exitUsage
	}
	u, err := CheckLoopbackURL(cfg.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return exitUsage
	}
	doer, err := NewDoer(cfg.Client, u, cfg.Conns, cfg.Timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return exitUsage
	}
	api := &API{Client: doer}

	var sc Scenario
	switch cfg.Scenario {
	case "get204":
		sc = &Get204{API: api, Path: u.RequestURI()}
	case "job-get", "job-create", "provider-flow", "thread-negotiation", "thread-list", "offer-flow", "contract-status":
		api.Prefix = strings.TrimSuffix(u.EscapedPath(), "/")
		switch cfg.Scenario {
		case "job-get":
			ph, err := phaseIndex(cfg.Phase)
			if err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				return exitUsage
			}
			sc = &JobGet{API: api, Jobs: cfg.Jobs, Phase: ph, Concurrency: cfg.SetupConc}
		case "provider-flow":
			sc = &ProviderFlow{API: api, Pairs: cfg.Pairs}
		case "job-create":
			sc = &JobCreate{API: api, Pairs: cfg.Pairs}
		case "thread-negotiation":
			sc = &ThreadNegotiation{API: api, Pairs: cfg.Pairs, Concurrency: cfg.SetupConc}
		case "thread-list":
			_, _, err1 := listPaths(cfg.ListMode)
			_, err2 := threadStateIndex(cfg.ThreadState)
			if err := errors.Join(err1, err2); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				return exitUsage
			}
			sc = &ThreadList{API: api, Agents: cfg.Agents, ThreadsPerAgent: cfg.PerAgent, Mode: cfg.ListMode,
				State: cfg.ThreadState, Concurrency: cfg.SetupConc}
		case "offer-flow":
			threads := cfg.LockedThreads
			if threads <= 0 {
				threads = lockedThreadsFor(cfg.Rate, cfg.Duration, cfg.Warmup)
			}
			sc = &OfferFlow{API: api, Pairs: cfg.Pairs, Threads: threads, Concurrency: cfg.SetupConc}
		case "contract-status":
			sc = &ContractStatus{API: api, Pairs: cfg.Pairs, Contracts: cfg.Contracts, Concurrency: cfg.SetupConc}
		}
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown scenario %q\n", cfg.Scenario)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	setupCtx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	err = sc.Setup(setupCtx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: SETUP FAILED against %s: %v\n", sc.Name(), cfg.URL, err)
		return exitSetup
	}
	if cfg.Settle > 0 && sc.Name() != "get204" {
		metrics := cfg.URL
		if cfg.MetricsURLs != "" {
			metrics = cfg.MetricsURLs
		}
		took, err := settle(ctx, http.DefaultClient, metrics, cfg.Settle, 5*time.Minute)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: %s: server did not settle after setup: %v\n", sc.Name(), err)
			return exitSetup
		}
		fmt.Printf("settled after setup in %.1fs (outboxes published, consumers quiet for %s)\n", took.Seconds(), cfg.Settle)
	}

	r := Execute(ctx, sc, &cfg)
	PrintTable(os.Stdout, r)
	WriteJSON(os.Stdout, r)
	WriteJSONFile(cfg.JSONPath, "loadgen", r)
	return exitOK
}

// Execute runs the (optional) warm-up and the measured schedule.
func Execute(ctx context.Context, sc Scenario, cfg *Config) Report {
	if cfg.Warmup > 0 {
		wm := sc.NewMetrics()
		ws := &Scheduler{Rate: cfg.Rate, Duration: cfg.Warmup, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
		ws.Run(ctx, func(ctx context.Context, intended time.Time) { sc.Arrival(ctx, wm, intended) })
	}
	m := sc.NewMetrics()
	s := &Scheduler{Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Drain: cfg.Drain}
	env := RunEnv{LoadStart: LoadAvg()}
	pids := readCPUPids(cfg.CPUPids)
	server0 := labelledCPU(pids)
	cpu0 := ProcessCPU()
	res := s.Run(ctx, func(ctx context.Context, intended time.Time) { sc.Arrival(ctx, m, intended) })
	env.CPU = ProcessCPU() - cpu0
	if len(pids) > 0 {
		env.ServerCPUms = map[string]float64{}
		for label, after := range labelledCPU(pids) {
			env.ServerCPUms[label] = float64(after-server0[label]) / float64(time.Millisecond)
		}
	}
	env.LoadEnd = LoadAvg()
	return BuildReport(sc, cfg, m, res, env)
}

// readCPUPids reads `label pid` lines (a label may repeat: its processes are summed).
func readCPUPids(path string) map[string][]int {
	out := map[string][]int{}
	if path == "" {
		return out
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu-pids:", err)
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if pid, err := strconv.Atoi(f[1]); err == nil && pid > 0 {
			out[f[0]] = append(out[f[0]], pid)
		}
	}
	return out
}

// labelledCPU: each label's processes' CPU time now (a process gone counts as 0).
func labelledCPU(pids map[string][]int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for label, list := range pids {
		for _, pid := range list {
			if cpu := ProcCPU(pid); cpu > 0 {
				out[label] += cpu
			}
		}
	}
	return out
}

func cmdCompare(args []string) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	run := fs.String("run", "", "JSON result of the system under test")
	base := fs.String("base", "", "JSON result of the baseline (optional)")
	title := fs.String("title", "", "heading")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *run == "" {
		fmt.Fprintln(os.Stderr, "compare: -run is required")
		return exitUsage
	}
	if strings.HasPrefix(reportScenario(*run), "ws-") {
		rr, err := ReadWSReport(*run)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			return 1
		}
		var br WSReport
		if *base != "" {
			if br, err = ReadWSReport(*base); err != nil {
				fmt.Fprintln(os.Stderr, "compare:", err)
				return 1
			}
		}
		PrintWSCompare(os.Stdout, *title, rr, br)
		return exitOK
	}
	rr, err := ReadReport(*run)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	var br Report // zero: no baseline column
	if *base != "" {
		if br, err = ReadReport(*base); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			return 1
		}
	}
	PrintCompare(os.Stdout, *title, rr, br)
	return exitOK
}

// cmdWait polls url until it answers 200 (exit 0), the timeout passes or the
// process -pid exits (exit 1).
func cmdWait(args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	raw := fs.String("url", "", "URL that answers 200 when ready (loopback only)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after")
	pid := fs.Int("pid", 0, "fail fast if this process exits")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if _, err := CheckLoopbackURL(*raw); err != nil {
		fmt.Fprintln(os.Stderr, "wait:", err)
		return exitUsage
	}
	c := NewClient(1, 2*time.Second)
	deadline := time.Now().Add(*timeout)
	last := "no attempt"
	for time.Now().Before(deadline) {
		if *pid > 0 {
			if err := syscall.Kill(*pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
				fmt.Fprintf(os.Stderr, "wait: process %d exited before %s was ready (last: %s)\n", *pid, *raw, last)
				return 1
			}
		}
		resp, err := c.Get(*raw)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return exitOK
			}
			last = "HTTP " + resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "wait: %s not ready after %s (last: %s)\n", *raw, *timeout, last)
	return 1
}

// cmdFreePort prints a currently free TCP port on 127.0.0.1.
func cmdFreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "freeport:", err)
		return 1
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return exitOK
}
