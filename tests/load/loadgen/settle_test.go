package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSettleMetricsSumsBacklogsAndConsumed(t *testing.T) {
	text := "# HELP x\njob_service_outbox_backlog 3\noffer_service_outbox_backlog 2\nconsumer_events_total 41\nother 9\n"
	s, err := parseSettleMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s.backlog != 5 || s.consumed != 41 {
		t.Fatalf("got %+v", s)
	}
	if _, err := parseSettleMetrics(strings.NewReader("unrelated 1\n")); err == nil {
		t.Fatal("expected an error without the metrics")
	}
}

func TestSettleWaitsForBacklogAndQuietConsumers(t *testing.T) {
	var calls int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := atomic.AddInt64(&calls, 1)
		backlog, consumed := 0, 100
		if n < 3 {
			backlog = 5 // still publishing
		}
		if n < 5 {
			consumed = int(n) // still consuming
		}
		fmt.Fprintf(w, "a_outbox_backlog %d\nconsumer_events_total %d\n", backlog, consumed)
	}))
	defer srv.Close()
	took, err := settle(context.Background(), srv.Client(), srv.URL, 500*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if atomic.LoadInt64(&calls) < 7 || took < 500*time.Millisecond {
		t.Fatalf("settled too early: %d calls, %s", calls, took)
	}
	closed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	closed.Close()
	if _, err := settle(context.Background(), http.DefaultClient, closed.URL, time.Second, time.Second); err == nil {
		t.Fatal("expected an error for a server that is gone")
	}
}
