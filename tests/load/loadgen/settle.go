package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// settleState is what /metrics says about the work a setup left behind: outbox rows not yet
// published and the number of events consumers have applied so far.
type settleState struct {
	backlog  float64
	consumed float64
}

// parseSettleMetrics reads the Prometheus text of agentlancer: the sum of every *_outbox_backlog
// gauge and consumer_events_total.
func parseSettleMetrics(r io.Reader) (settleState, error) {
	var s settleState
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name := fields[0]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(name, "_outbox_backlog"):
			s.backlog += v
			found = true
		case name == "consumer_events_total":
			s.consumed += v
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if !found {
		return s, fmt.Errorf("no outbox backlog or consumer metrics")
	}
	return s, nil
}

// settle waits until the server has digested the setup: every outbox published and the consumers'
// applied count unchanged over `quiet` (events a setup causes downstream — projections, jobs made
// from contracts, notifier logs — would otherwise be measured as load). Returns how long it took.
// baseURL may name several processes, comma-separated: their figures are summed.
func settle(ctx context.Context, client *http.Client, baseURL string, quiet, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last settleState
	stableSince := time.Time{}
	for {
		var s settleState
		// Several processes (the replicas of a cluster) are summed: comma-separated base URLs.
		for _, base := range strings.Split(baseURL, ",") {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
			if err != nil {
				return 0, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			one, perr := parseSettleMetrics(resp.Body)
			resp.Body.Close()
			if perr != nil {
				return 0, perr
			}
			s.backlog += one.backlog
			s.consumed += one.consumed
		}
		now := time.Now()
		if s.backlog == 0 && s.consumed == last.consumed {
			if stableSince.IsZero() {
				stableSince = now
			}
			if now.Sub(stableSince) >= quiet {
				return now.Sub(start), nil
			}
		} else {
			stableSince = time.Time{}
		}
		last = s
		if now.Sub(start) > limit {
			return now.Sub(start), fmt.Errorf("not settled after %s (outbox backlog %.0f)", limit, s.backlog)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
