package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of an
// ascending sorted slice: the smallest value v such that at least p% of the
// samples are <= v. It is exact (no histogram approximation). An empty slice
// yields 0.
func Percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// The small epsilon keeps e.g. 99.9% of 1000 samples at rank 999 despite
	// binary floating point (99.9*1000/100 may come out as 999.0000000001).
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// Outcome is the result of one timed HTTP call (or one iteration).
type Outcome struct {
	Latency time.Duration // measured from the intended start
	Status  int           // HTTP status; 0 when Err != nil
	Err     error         // transport error (connect, timeout, reset, cancelled)
	Detail  string        // failure description (response body excerpt etc.)
	// NoLatency: count the outcome but contribute no latency sample (used
	// for aborted iterations, whose partial duration is meaningless).
	NoLatency bool
}

// Step accumulates outcomes for one named step. Safe for concurrent use.
type Step struct {
	Name string

	mu        sync.Mutex
	lat       []int64 // nanoseconds, every received response (any status)
	count     int64
	ok        int64
	non2xx    int64
	errs      int64
	byStatus  map[int]int64 // non-2xx responses by HTTP status
	firstFail string
}

func NewStep(name string) *Step { return &Step{Name: name} }

// Add records one outcome. Responses of any status contribute a latency
// sample; transport errors do not (their "latency" is mostly the timeout or
// an instant connection refusal and would distort the distribution).
func (s *Step) Add(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	switch {
	case o.Err != nil:
		s.errs++
		if s.firstFail == "" {
			s.firstFail = "transport error: " + o.Err.Error()
			if o.Detail != "" {
				s.firstFail += " (" + o.Detail + ")"
			}
		}
		return
	case o.Status >= 200 && o.Status < 300:
		s.ok++
		if o.Detail != "" && s.firstFail == "" {
			s.firstFail = fmt.Sprintf("HTTP %d but %s", o.Status, o.Detail)
		}
	default:
		s.non2xx++
		if s.byStatus == nil {
			s.byStatus = map[int]int64{}
		}
		s.byStatus[o.Status]++
		if s.firstFail == "" {
			s.firstFail = fmt.Sprintf("HTTP %d: %s", o.Status, o.Detail)
		}
	}
	if !o.NoLatency {
		s.lat = append(s.lat, int64(o.Latency))
	}
}

// Counts returns count, 2xx, non-2xx and transport errors.
func (s *Step) Counts() (count, ok, non2xx, errs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.ok, s.non2xx, s.errs
}

// FirstFailure returns the description of the first failure, if any.
func (s *Step) FirstFailure() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstFail
}

// Summary is the reported view of a Step (or of several merged Steps).
type Summary struct {
	Name         string  `json:"name"`
	Count        int64   `json:"count"`
	OK           int64   `json:"ok_2xx"`
	Non2xx       int64   `json:"non_2xx"`
	Errors       int64   `json:"errors"`
	Dropped      int64   `json:"dropped"`
	PerSec       float64 `json:"per_sec"`    // count / elapsed
	OKPerSec     float64 `json:"ok_per_sec"` // 2xx / elapsed
	Samples      int     `json:"latency_samples"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	P999ms       float64 `json:"p99_9_ms"`
	Maxms        float64 `json:"max_ms"`
	MeanMs       float64 `json:"mean_ms"`
	FirstFailure string  `json:"first_failure,omitempty"`

	// Non2xxByStatus counts the non-2xx responses by HTTP status.
	Non2xxByStatus map[int]int64 `json:"non_2xx_by_status,omitempty"`
}

func nsToMs(v int64) float64 { return float64(v) / 1e6 }

// StatusBreakdown renders non-2xx counts by status in ascending status order,
// e.g. "409 x 3, 422 x 1" ("" when there are none).
func StatusBreakdown(by map[int]int64) string {
	statuses := make([]int, 0, len(by))
	for st := range by {
		statuses = append(statuses, st)
	}
	sort.Ints(statuses)
	parts := make([]string, 0, len(statuses))
	for _, st := range statuses {
		parts = append(parts, fmt.Sprintf("%d x %d", st, by[st]))
	}
	return strings.Join(parts, ", ")
}

// Summarize merges the given steps into one Summary named name.
// elapsed is the wall time used for the per-second figures.
func Summarize(name string, elapsed time.Duration, dropped int64, steps ...*Step) Summary {
	sum := Summary{Name: name, Dropped: dropped}
	var all []int64
	for _, s := range steps {
		s.mu.Lock()
		sum.Count += s.count
		sum.OK += s.ok
		sum.Non2xx += s.non2xx
		sum.Errors += s.errs
		for status, n := range s.byStatus {
			if sum.Non2xxByStatus == nil {
				sum.Non2xxByStatus = map[int]int64{}
			}
			sum.Non2xxByStatus[status] += n
		}
		if sum.FirstFailure == "" && s.firstFail != "" {
			if len(steps) > 1 {
				sum.FirstFailure = s.Name + ": " + s.firstFail
			} else {
				sum.FirstFailure = s.firstFail
			}
		}
		all = append(all, s.lat...)
		s.mu.Unlock()
	}
	FillLatency(&sum, all)
	if secs := elapsed.Seconds(); secs > 0 {
		sum.PerSec = float64(sum.Count) / secs
		sum.OKPerSec = float64(sum.OK) / secs
	}
	return sum
}

// FillLatency sorts lat in place and fills the latency fields of sum.
func FillLatency(sum *Summary, lat []int64) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sum.Samples = len(lat)
	if len(lat) == 0 {
		return
	}
	var total float64
	for _, v := range lat {
		total += float64(v)
	}
	sum.MeanMs = total / float64(len(lat)) / 1e6
	sum.P50ms = nsToMs(Percentile(lat, 50))
	sum.P90ms = nsToMs(Percentile(lat, 90))
	sum.P99ms = nsToMs(Percentile(lat, 99))
	sum.P999ms = nsToMs(Percentile(lat, 99.9))
	sum.Maxms = nsToMs(lat[len(lat)-1])
}
