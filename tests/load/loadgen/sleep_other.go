//go:build !linux

package main

import "time"

func preciseSleepSetup() func() { return func() {} }

func preciseSleep(d time.Duration) { time.Sleep(d) }
