package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time process pid has used, and its parent's pid.
func procCPU(pid int) (cpu time.Duration, ppid int, ok bool) {
	user, sys, ppid, ok := procTimes(pid)
	return user + sys, ppid, ok
}

// procTimes returns the user and system CPU time process pid has used, and its parent's pid.
func procTimes(pid int) (user, sys time.Duration, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * clockTick, time.Duration(st) * clockTick, ppid, true
}

// treeCPU returns the CPU time of pid, of its children that have ended (PostgreSQL: the
// postmaster reaps its parallel workers and backends, adding their time to its own cutime and
// cstime), and of its live children (backends and workers).
func treeCPU(pid int) time.Duration {
	total := time.Duration(0)
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			// utime, stime, cutime, cstime are fields 14-17: f[11] to f[14].
			for j := 11; j <= 14 && j < len(f); j++ {
				n, _ := strconv.ParseInt(f[j], 10, 64)
				total += time.Duration(n) * clockTick
			}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if cpu, ppid, ok := procCPU(child); ok && ppid == pid {
			total += cpu
		}
	}
	return total
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postmasterPID reads the server's pid from postmaster.pid in the cluster directory of an
// embedded cluster's data directory (DataDir/pg, or where DataDir/pg-location points).
func postmasterPID(dataDir string) int {
	pgData := filepath.Join(dataDir, "pg")
	if b, err := os.ReadFile(filepath.Join(dataDir, "pg-location")); err == nil {
		pgData = strings.TrimSpace(string(b))
	}
	b, err := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// CPU is the CPU time the processes of a run used per operation, in microseconds.
type CPU struct {
	// ConsoleUs is the server's: the console, or the HTTP floors' process (0 when served in the bench).
	ConsoleUs float64 `json:"console_us,omitempty"`
	// ConsoleSysUs is the part of ConsoleUs spent in the kernel (network I/O mostly).
	ConsoleSysUs float64 `json:"console_sys_us,omitempty"`
	PostgresUs   float64 `json:"postgres_us"`
	BenchUs      float64 `json:"load_generator_us"`
	// OtherPct is the share of the machine's CPU that other processes (not the console,
	// PostgreSQL or the bench) used meanwhile: above a few percent the figures are noisy.
	OtherPct float64 `json:"other_processes_pct"`
}

// machineBusy returns the CPU time all processes have used (busy jiffies of /proc/stat) and
// the wall time it covers across all CPUs.
func machineBusy() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick
}

// cpuMeter snapshots the CPU time of the console, PostgreSQL and this process.
type cpuMeter struct {
	consolePID, postmaster int
	console, consoleSys    time.Duration
	pg, self               time.Duration
	busy, total            time.Duration
}

func startCPU(consolePID, postmaster int) *cpuMeter {
	m := &cpuMeter{consolePID: consolePID, postmaster: postmaster}
	if consolePID > 0 {
		user, sys, _, _ := procTimes(consolePID)
		m.console, m.consoleSys = user+sys, sys
	}
	if postmaster > 0 {
		m.pg = treeCPU(postmaster)
	}
	m.self = selfCPU()
	m.busy, m.total = machineBusy()
	return m
}

// per returns the CPU used since start divided by ops, in microseconds.
func (m *cpuMeter) per(ops int) *CPU {
	if ops <= 0 {
		return nil
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(ops) }
	self := selfCPU() - m.self
	c := &CPU{BenchUs: us(self)}
	ours := self
	if m.consolePID > 0 {
		user, sys, _, _ := procTimes(m.consolePID)
		c.ConsoleUs, c.ConsoleSysUs = us(user+sys-m.console), us(sys-m.consoleSys)
		ours += user + sys - m.console
	}
	if m.postmaster > 0 {
		pg := treeCPU(m.postmaster) - m.pg
		c.PostgresUs = us(pg)
		ours += pg
	}
	busy, total := machineBusy()
	if total > m.total {
		c.OtherPct = max(0, 100*float64(busy-m.busy-ours)/float64(total-m.total))
	}
	return c
}

// waitIdle waits until the machine's CPU is less than 10% busy over a second, or until limit
// has passed, and returns how long it waited and the last busy percentage.
func waitIdle(ctx context.Context, limit time.Duration) (time.Duration, float64) {
	start := time.Now()
	for {
		b0, t0 := machineBusy()
		select {
		case <-ctx.Done():
			return time.Since(start), 0
		case <-time.After(time.Second):
		}
		b1, t1 := machineBusy()
		busy := 0.0
		if t1 > t0 {
			busy = 100 * float64(b1-b0) / float64(t1-t0)
		}
		if busy < 10 || time.Since(start) >= limit {
			return time.Since(start), busy
		}
	}
}
