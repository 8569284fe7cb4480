package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestScheduleCount(t *testing.T) {
	cases := []struct {
		rate float64
		d    time.Duration
		want int64
	}{
		{1000, time.Second, 1000},
		{20000, 20 * time.Second, 400000},
		{400, 20 * time.Second, 8000},
		{3.3, time.Second, 3},
		{0.5, 3 * time.Second, 2}, // 1.5 rounds to 2
		{0, time.Second, 0},
		{100, 0, 0},
	}
	for _, c := range cases {
		if got := ScheduleCount(c.rate, c.d); got != c.want {
			t.Errorf("ScheduleCount(%v, %v) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

func TestIntendedOffset(t *testing.T) {
	if got := IntendedOffset(0, 500); got != 0 {
		t.Fatal(got)
	}
	if got := IntendedOffset(1, 20000); got != 50*time.Microsecond {
		t.Fatal(got)
	}
	if got := IntendedOffset(999, 1000); got != 999*time.Millisecond {
		t.Fatal(got)
	}
}

// The scheduler launches rate x duration arrivals (within +-1), at evenly
// spaced intended times, and finishes about when the schedule ends.
func TestSchedulerLaunchesRateTimesDuration(t *testing.T) {
	for _, c := range []struct {
		rate float64
		d    time.Duration
	}{{2000, 500 * time.Millisecond}, {333, 300 * time.Millisecond}, {50, 100 * time.Millisecond}} {
		var mu sync.Mutex
		var intended []time.Time
		s := &Scheduler{Rate: c.rate, Duration: c.d}
		t0 := time.Now()
		res := s.Run(context.Background(), func(_ context.Context, it time.Time) {
			mu.Lock()
			intended = append(intended, it)
			mu.Unlock()
		})
		wall := time.Since(t0)
		want := c.rate * c.d.Seconds()
		if got := float64(res.Launched); got < want-1 || got > want+1 {
			t.Errorf("rate %v for %v: launched %d, want %v +-1", c.rate, c.d, res.Launched, want)
		}
		if int64(len(intended)) != res.Launched || res.Dropped != 0 || res.Scheduled != res.Launched {
			t.Errorf("res %+v, calls %d", res, len(intended))
		}
		// Schedule must not finish early; allow generous slack for late.
		if wall < c.d-2*time.Second/time.Duration(c.rate) || wall > c.d+500*time.Millisecond {
			t.Errorf("rate %v for %v: took %v", c.rate, c.d, wall)
		}
		// Intended times are exactly start + i/rate.
		seen := map[time.Duration]bool{}
		for _, it := range intended {
			seen[it.Sub(res.Start)] = true
		}
		for i := int64(0); i < res.Launched; i++ {
			if !seen[IntendedOffset(i, c.rate)] {
				t.Fatalf("rate %v: missing intended offset of arrival %d", c.rate, i)
			}
		}
	}
}

// A slow consumer must not slow the schedule down (open model), and latency
// measured from the intended start must include the queueing delay: a
// closed-model generator would report ~service time here.
func TestOpenModelLatencyFromIntendedStart(t *testing.T) {
	const service = 10 * time.Millisecond // single "server" → capacity 100/s
	var server sync.Mutex
	st := NewStep("x")
	s := &Scheduler{Rate: 200, Duration: 500 * time.Millisecond} // 100 arrivals, 2x capacity
	var launchMu sync.Mutex
	var lastLaunch time.Time
	res := s.Run(context.Background(), func(_ context.Context, intended time.Time) {
		launchMu.Lock()
		if now := time.Now(); now.After(lastLaunch) {
			lastLaunch = now
		}
		launchMu.Unlock()
		server.Lock()
		time.Sleep(service)
		server.Unlock()
		st.Add(Outcome{Latency: time.Since(intended), Status: 200})
	})
	if res.Launched != 100 {
		t.Fatalf("launched %d", res.Launched)
	}
	// All arrivals were started on schedule even though the server is slow.
	if d := lastLaunch.Sub(res.Start); d > 600*time.Millisecond {
		t.Fatalf("last launch %v after start: schedule was held back", d)
	}
	sum := Summarize("x", res.Elapsed(s.Duration), 0, st)
	// Backlog grows by ~100/s x 0.5s = 50 requests → last ones wait ~0.5s.
	if sum.Maxms < 300 {
		t.Fatalf("max latency %.1f ms; expected queueing delay (>300ms) to be counted", sum.Maxms)
	}
	if sum.P50ms < 2*float64(service/time.Millisecond) {
		t.Fatalf("p50 %.1f ms hides queueing", sum.P50ms)
	}
}

// When MaxInFlight arrivals are still running, further arrivals are dropped
// and counted rather than delaying the schedule.
func TestSchedulerDropsAtMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	s := &Scheduler{Rate: 1000, Duration: 100 * time.Millisecond, MaxInFlight: 3}
	done := make(chan SchedResult)
	go func() {
		done <- s.Run(context.Background(), func(context.Context, time.Time) { <-release })
	}()
	time.Sleep(300 * time.Millisecond)
	close(release)
	res := <-done
	if res.Launched != 3 || res.Dropped != 97 || res.Scheduled != 100 {
		t.Fatalf("%+v", res)
	}
}

// After Drain, in-flight work is cancelled via its context.
func TestSchedulerDrainCancels(t *testing.T) {
	s := &Scheduler{Rate: 100, Duration: 50 * time.Millisecond, Drain: 100 * time.Millisecond}
	t0 := time.Now()
	res := s.Run(context.Background(), func(ctx context.Context, _ time.Time) { <-ctx.Done() })
	if !res.Cancelled || res.Launched != 5 {
		t.Fatalf("%+v", res)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("drain took %v", d)
	}
}

// Cancelling the parent stops the schedule; arrivals not yet due are neither
// scheduled nor dropped.
func TestSchedulerInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s := &Scheduler{Rate: 100, Duration: 10 * time.Second}
	res := s.Run(ctx, func(context.Context, time.Time) {})
	if !res.Interrupted || res.Dropped != 0 || res.Scheduled != res.Launched || res.Launched < 9 || res.Launched > 12 {
		t.Fatalf("%+v", res)
	}
}
