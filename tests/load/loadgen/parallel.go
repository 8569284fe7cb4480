package main

import (
	"context"
	"sync"
	"sync/atomic"
)

// forEachIndex calls work(ctx, i) for i in [0, n) from conc goroutines; the
// first error cancels the rest and is returned (also ctx's own error, if it
// ended first).
func forEachIndex(ctx context.Context, n, conc int, work func(ctx context.Context, i int) error) error {
	if conc < 1 {
		conc = 1
	}
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := work(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
