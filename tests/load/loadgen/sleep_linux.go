//go:build linux

package main

import (
	"syscall"
	"time"
)

const prSetTimerslack = 29 // PR_SET_TIMERSLACK, <linux/prctl.h>
const prGetTimerslack = 30

// preciseSleepSetup lowers the timer slack of the current (locked) OS thread
// to 1 ns so nanosleep wakes within tens of microseconds; it returns a
// function restoring the previous slack.
func preciseSleepSetup() func() {
	old, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerslack, 0, 0)
	if errno != 0 {
		return func() {}
	}
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
	return func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, old, 0) }
}

// preciseSleep blocks the current OS thread for d using nanosleep(2).
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err == syscall.EINTR {
			ts = rem
			continue
		}
		return
	}
}
