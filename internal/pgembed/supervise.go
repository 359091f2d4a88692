package pgembed

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Supervision limits. They are named once here; an operator has no reason to tune them.
const (
	// RestartBackoffMin is the wait before the second attempt to restart a server that died
	// (the first is at once); each failure doubles it, up to RestartBackoffMax. A server that
	// dies again within StableAfter of a restart keeps the grown wait.
	RestartBackoffMin = 100 * time.Millisecond
	RestartBackoffMax = 10 * time.Second
	StableAfter       = 30 * time.Second
	// PollEvery is how often a supervisor checks a server that is not its own child (one it
	// attached to); its own child's exit is noticed at once.
	PollEvery = 250 * time.Millisecond
	// AttachWait bounds how long Start waits for a registered supervisor to bring a dead server
	// back before starting one itself.
	AttachWait = 30 * time.Second
	// StopWait bounds a fast shutdown of the server before it is killed.
	StopWait = 30 * time.Second
)

// supervisorMark is the content of a supervising process's registration file.
const supervisorMark = "supervise"

// supervise keeps the server running until ctx ends: when the postmaster in use exits, it
// starts it again (or adopts the server another process started), backing off on failures.
func (c *Cluster) supervise(ctx context.Context) {
	defer close(c.supervisorDone)
	var delay time.Duration
	for {
		up := time.Now()
		if !c.waitExit(ctx) {
			return
		}
		if time.Since(up) >= StableAfter {
			delay = 0
		}
		c.log.Warn("embedded PostgreSQL stopped; restarting it", "data_dir", c.dataDir)
		var ok bool
		if delay, ok = c.restartBackingOff(ctx, delay, c.restart, sleep); !ok {
			return
		}
	}
}

// restartBackingOff calls restart until it succeeds (true) or ctx ends (false), waiting
// through wait for delay before each call when delay > 0. After each failure the delay doubles,
// from RestartBackoffMin up to RestartBackoffMax, and the failure is logged with the wait
// before the next try. It never gives up while ctx lasts: a console without its database can
// only wait, and says so in its log. It returns the delay the next failure starts from.
func (c *Cluster) restartBackingOff(ctx context.Context, delay time.Duration,
	restart func(context.Context) (string, error), wait func(context.Context, time.Duration) bool) (time.Duration, bool) {
	for {
		if delay > 0 && !wait(ctx, delay) {
			return delay, false
		}
		delay = nextBackoff(delay)
		how, err := restart(ctx)
		if err == nil {
			c.log.Info("embedded PostgreSQL is back", "data_dir", c.dataDir, "how", how, "port", c.Port())
			return delay, true
		}
		if ctx.Err() != nil {
			return delay, false
		}
		c.log.Error("embedded PostgreSQL did not restart", "data_dir", c.dataDir, "err", err, "retry_in", delay)
	}
}

// nextBackoff is the wait after a failed restart that followed a wait of delay.
func nextBackoff(delay time.Duration) time.Duration {
	return min(max(2*delay, RestartBackoffMin), RestartBackoffMax)
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitExit waits until the postmaster in use is gone (true) or ctx ends (false).
func (c *Cluster) waitExit(ctx context.Context) bool {
	c.mu.Lock()
	pid, exited := c.pid, c.exited
	c.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
			return true
		case <-ctx.Done():
			return false
		}
	}
	t := time.NewTicker(PollEvery)
	defer t.Stop()
	for {
		if !isServer(pid, c.pgData) {
			return true
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
}

// restart brings the server back under the lock: it adopts one another process started
// meanwhile, or starts one on the old port (another when that is taken). It says which.
func (c *Cluster) restart(ctx context.Context) (string, error) {
	unlock, err := lockFile(filepath.Join(c.dataDir, "pgembed.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if pid, port, ok := runningServer(c.pgData); ok {
		c.setServer(pid, port, nil, nil)
		if err := c.waitReady(ctx, nil); err != nil {
			return "", fmt.Errorf("pgembed: a server (pid %d) runs in %s but does not answer: %w", pid, c.pgData, err)
		}
		return "adopted", nil
	}
	if err := c.startServer(ctx, c.Port()); err != nil {
		return "", err
	}
	return "restarted", nil
}
