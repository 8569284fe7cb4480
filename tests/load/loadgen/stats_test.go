package main

import (
	"errors"
	"math/rand"
	"testing"
	"time"
)

func seq(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(i + 1)
	}
	return s
}

func TestPercentileNearestRank(t *testing.T) {
	cases := []struct {
		n    int
		p    float64
		want int64
	}{
		{100, 50, 50}, {100, 90, 90}, {100, 99, 99}, {100, 99.9, 100}, {100, 100, 100},
		{1000, 50, 500}, {1000, 99, 990}, {1000, 99.9, 999}, {1000, 100, 1000},
		{10000, 99.9, 9990}, {10000, 99.99, 9999},
		{1, 50, 1}, {1, 99.9, 1},
		{2, 50, 1}, {2, 51, 2},
		{3, 50, 2},
		{10, 0, 1}, {10, 0.1, 1},
	}
	for _, c := range cases {
		if got := Percentile(seq(c.n), c.p); got != c.want {
			t.Errorf("Percentile(1..%d, %v) = %d, want %d", c.n, c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("empty: got %d", got)
	}
}

// Percentile of p must be a value v with at least p% of samples <= v and
// fewer than p% of samples < v (definition of nearest rank), on random data.
func TestPercentileDefinitionRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.Intn(3000)
		s := make([]int64, n)
		for i := range s {
			s[i] = rng.Int63n(1000)
		}
		var sum Summary
		FillLatency(&sum, s) // sorts s
		for _, p := range []float64{50, 90, 99, 99.9} {
			v := Percentile(s, p)
			le, lt := 0, 0
			for _, x := range s {
				if x <= v {
					le++
				}
				if x < v {
					lt++
				}
			}
			if float64(le)*100 < p*float64(n)-1e-6 {
				t.Fatalf("n=%d p=%v v=%d: only %d samples <= v", n, p, v, le)
			}
			if float64(lt)*100 >= p*float64(n)+1e-6 {
				t.Fatalf("n=%d p=%v v=%d: %d samples < v, v too large", n, p, v, lt)
			}
		}
	}
}

func TestSummarizeCountsAndLatency(t *testing.T) {
	s := NewStep("x")
	for i := 1; i <= 1000; i++ {
		s.Add(Outcome{Latency: time.Duration(i) * time.Millisecond, Status: 204})
	}
	s.Add(Outcome{Latency: 5 * time.Second, Status: 500, Detail: "GET /: boom"})
	s.Add(Outcome{Latency: 9 * time.Second, Err: errors.New("timeout")})
	s.Add(Outcome{Status: 409, NoLatency: true, Detail: "aborted"})
	sum := Summarize("x", 2*time.Second, 7, s)
	if sum.Count != 1003 || sum.OK != 1000 || sum.Non2xx != 2 || sum.Errors != 1 || sum.Dropped != 7 {
		t.Fatalf("counts: %+v", sum)
	}
	if sum.Samples != 1001 { // errors and NoLatency outcomes give no sample
		t.Fatalf("samples = %d", sum.Samples)
	}
	if sum.P50ms != 501 || sum.P99ms != 991 || sum.P999ms != 1000 || sum.Maxms != 5000 {
		t.Fatalf("latency: %+v", sum)
	}
	if sum.PerSec != 501.5 || sum.OKPerSec != 500 {
		t.Fatalf("rates: %v %v", sum.PerSec, sum.OKPerSec)
	}
	if sum.FirstFailure != "HTTP 500: GET /: boom" {
		t.Fatalf("first failure: %q", sum.FirstFailure)
	}
}

func TestSummarizeMerge(t *testing.T) {
	a, b := NewStep("a"), NewStep("b")
	a.Add(Outcome{Latency: 1 * time.Millisecond, Status: 200})
	b.Add(Outcome{Latency: 3 * time.Millisecond, Status: 200})
	b.Add(Outcome{Latency: 2 * time.Millisecond, Status: 404, Detail: "nope"})
	sum := Summarize("all", time.Second, 0, a, b)
	if sum.Count != 3 || sum.OK != 2 || sum.Non2xx != 1 || sum.Maxms != 3 || sum.P50ms != 2 {
		t.Fatalf("%+v", sum)
	}
	if sum.FirstFailure != "b: HTTP 404: nope" {
		t.Fatalf("%q", sum.FirstFailure)
	}
}
