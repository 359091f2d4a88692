// Package pgtest gives tests a real PostgreSQL: one throwaway embedded cluster per test binary
// (fsync off, in a temporary directory, on a free loopback port) and a fresh database per test.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgembed"
)

var (
	mu      sync.Mutex
	cluster *pgembed.Cluster
	dbSeq   atomic.Int64
)

// Main runs the package's tests and stops the cluster afterwards. Use it as TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the package's tests, stops the clusters and returns the exit code, for a TestMain
// that has more to do before it exits.
func Run(m *testing.M) int {
	code := m.Run()
	runCleanups()
	mu.Lock()
	if cluster != nil {
		if err := cluster.Destroy(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	mu.Unlock()
	return code
}

// Cluster returns the test binary's cluster, starting it on first use. A cluster that cannot
// start fails the test: tests never skip for want of a database.
func Cluster(t testing.TB) *pgembed.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil {
		return cluster
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, NoFsync: true})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: start PostgreSQL: %v", err)
	}
	cluster = c
	return c
}

// NewDB creates an empty database on the test cluster and returns its URL; the database is
// dropped when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	return NamedDB(t, fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1)))
}

// NamedDB creates a database called name on the test cluster (for names that matter, such as
// CockroachDB's "system") and returns its URL; it is dropped when the test ends. Only one test
// of a binary may hold a name at a time.
func NamedDB(t testing.TB, name string) string {
	t.Helper()
	c := Cluster(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.AdminURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, c.AdminURL())
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	u, _ := url.Parse(c.URL())
	u.Path = "/" + name
	return u.String()
}

// TempDir returns a new directory the embedded server's user can pass through (t.TempDir's
// parents are private to the test user, which keeps out the `postgres` user when we are root),
// removed when the test ends.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
