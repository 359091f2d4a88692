package main

import (
	"os"
	"runtime/debug"
)

// serveGCPercent and serveMemoryLimit are the collector settings of `serve` when neither
// GOGC nor GOMEMLIMIT is set. The server's live heap is small (a few MB: answers render into
// pooled buffers), so at Go's default GOGC=100 it collected after every few MB of garbage:
// 7% of a page's and of a verify's CPU in `make bench` profiles (10k sessions, 2026-12-02).
// At 400 that fell to 3% and 1%, but the peak RSS rose from 37 to 59 MB (a CSV export); 300
// under a 48 MiB soft limit keeps most of the gain and the heap bounded (the collector works
// harder as the heap nears the limit, and a larger live heap still gets the memory it needs).
const (
	serveGCPercent   = 300
	serveMemoryLimit = 48 << 20
)

// tuneGC applies serve's collector settings unless the environment chose its own, and
// reports whether it did.
func tuneGC() bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(serveGCPercent)
	debug.SetMemoryLimit(serveMemoryLimit)
	return true
}
