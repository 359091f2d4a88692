// Package proctest looks at processes through /proc for tests that must show a server came
// back, and that nothing of it was left behind: parents, children, and waiting for exits. It
// reads only; it never signals a process.
package proctest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Parent returns pid's parent pid (0 when pid is gone).
func Parent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut after the
	// last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// Children lists the live children of pid (a postmaster's backends and helper processes).
func Children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err == nil && Parent(p) == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// WithArgs lists the live processes whose command line has the arguments want, in order and
// next to each other (for example "-D", dir: the postmasters of a data directory).
func WithArgs(want ...string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		for i := 0; i+len(want) <= len(args); i++ {
			if equal(args[i:i+len(want)], want) {
				pids = append(pids, p)
				break
			}
		}
	}
	return pids
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Alive reports whether pid runs (a zombie, exited but not yet reaped, does not count).
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// WaitGone waits (bounded: one minute) until every pid has exited, and fails the test naming
// those that did not.
func WaitGone(t testing.TB, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, pid := range pids {
		for Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if Alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
}

// AcceptQueue returns how many connections to the IPv4 TCP socket listening on port wait in
// its accept queue: the kernel has completed them, the server has not accepted them yet. ok is
// false when no socket listens on port.
func AcceptQueue(port int) (n int, ok bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// sl local_address rem_address st tx_queue:rx_queue ...; a listening socket's rx_queue
		// is its accept queue's length.
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != "0A" {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		q, err := strconv.ParseUint(rx, 16, 32)
		if err != nil {
			return 0, false
		}
		return int(q), true
	}
	return 0, false
}
