package main

import (
	"runtime/debug"
	"testing"
)

// serve's collector settings apply unless GOGC or GOMEMLIMIT says otherwise.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	if !tuneGC() {
		t.Fatal("not applied with neither variable set")
	}
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Errorf("GC percent %d, want %d", got, serveGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != serveMemoryLimit {
		t.Errorf("memory limit %d, want %d", got, serveMemoryLimit)
	}

	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "200")
			debug.SetGCPercent(100)
			if tuneGC() {
				t.Errorf("applied with %s set", env)
			}
			if got := debug.SetGCPercent(100); got != 100 {
				t.Errorf("GC percent %d with %s set, want the environment's", got, env)
			}
		})
	}
}
