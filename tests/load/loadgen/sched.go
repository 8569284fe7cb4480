package main

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ScheduleCount is the number of arrivals of an open-model schedule with the
// given rate (per second) over d: round(rate * d).
func ScheduleCount(rate float64, d time.Duration) int64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	return int64(math.Round(rate * d.Seconds()))
}

// IntendedOffset is the intended start of arrival i relative to the schedule
// start: i / rate. Arrivals are evenly spaced (constant arrival rate).
func IntendedOffset(i int64, rate float64) time.Duration {
	return time.Duration(float64(i) * 1e9 / rate)
}

// Scheduler drives an open-model (constant arrival rate) workload: arrival i
// is launched in its own goroutine at start + i/rate regardless of how long
// earlier arrivals take. When MaxInFlight arrivals are still running, a new
// arrival is dropped (counted) instead of delaying the schedule.
type Scheduler struct {
	Rate        float64       // arrivals per second
	Duration    time.Duration // length of the schedule
	MaxInFlight int           // <= 0: unlimited
	Drain       time.Duration // after the last arrival, wait this long for in-flight work, then cancel it; <= 0: wait forever
}

// SchedResult describes what the scheduler did.
type SchedResult struct {
	Scheduled int64     // arrivals in the schedule
	Launched  int64     // arrivals actually started
	Dropped   int64     // arrivals skipped because MaxInFlight was reached
	Start     time.Time // intended start of arrival 0
	End       time.Time // when the last launched arrival finished (or was cancelled)
	Cancelled bool      // in-flight work was cancelled after Drain
	// Interrupted: the parent context ended (e.g. SIGINT) before the
	// schedule did; Scheduled then counts only the arrivals that were due.
	Interrupted bool
	LagNs       []int64 // per scheduled arrival: actual launch time - intended time
}

// Elapsed is the wall time from the schedule start to the last completion,
// never less than the schedule duration.
func (r SchedResult) Elapsed(d time.Duration) time.Duration {
	e := r.End.Sub(r.Start)
	if e < d {
		e = d
	}
	return e
}

// Run executes the schedule. fn receives a context (cancelled after Drain)
// and the arrival's intended start time, from which latency must be measured.
// Run returns after every launched fn has returned.
func (s *Scheduler) Run(parent context.Context, fn func(ctx context.Context, intended time.Time)) SchedResult {
	n := ScheduleCount(s.Rate, s.Duration)
	res := SchedResult{Scheduled: n, LagNs: make([]int64, 0, n)}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	var inflight atomic.Int64
	var wg sync.WaitGroup

	// The pacing goroutine sleeps with a precise OS-level sleep on its own
	// thread (see sleep_linux.go); Go timers round sub-millisecond sleeps
	// up to ~1 ms when idle, which would batch arrivals.
	runtime.LockOSThread()
	restore := preciseSleepSetup()
	res.Start = time.Now()
	for i := int64(0); i < n; i++ {
		intended := res.Start.Add(IntendedOffset(i, s.Rate))
		for {
			d := time.Until(intended)
			if d <= 0 || ctx.Err() != nil {
				break
			}
			if d > 20*time.Millisecond {
				d = 20 * time.Millisecond // stay responsive to cancellation
			}
			preciseSleep(d)
		}
		if ctx.Err() != nil {
			res.Interrupted = true
			res.Scheduled = i
			break
		}
		res.LagNs = append(res.LagNs, int64(time.Since(intended)))
		if s.MaxInFlight > 0 && inflight.Load() >= int64(s.MaxInFlight) {
			res.Dropped++
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		res.Launched++
		go func(intended time.Time) {
			defer wg.Done()
			defer inflight.Add(-1)
			fn(ctx, intended)
		}(intended)
	}
	restore()
	runtime.UnlockOSThread()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if s.Drain > 0 {
		t := time.NewTimer(s.Drain)
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			res.Cancelled = true
			cancel()
			<-done
		}
	} else {
		<-done
	}
	res.End = time.Now()
	return res
}
