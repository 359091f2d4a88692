package pgdb

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestClassifyVersion(t *testing.T) {
	for v, want := range map[string]Flavor{
		"PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc":                       Postgres,
		"CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)":                    Cockroach,
		"CockroachDB CCL v24.3.0 (x86_64-pc-linux-gnu, built 2024/11/14 00:00:00, go1.22.8 X:nocoverageredesign)": Cockroach,
	} {
		if got, err := ClassifyVersion(v); err != nil || got != want {
			t.Errorf("ClassifyVersion(%q) = %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "MySQL 8.0", "8.0.36-0ubuntu0.22.04.1", "Materialize v0.1"} {
		if _, err := ClassifyVersion(v); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ClassifyVersion(%q) = %v, want ErrUnsupported", v, err)
		}
	}
}

func TestParseFlavor(t *testing.T) {
	for in, want := range map[string]Flavor{"": 0, "auto": 0, "cockroach": Cockroach, "CRDB": Cockroach, "postgres": Postgres, "postgresql": Postgres} {
		if got, err := ParseFlavor(in); err != nil || got != want {
			t.Errorf("ParseFlavor(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFlavor("mysql"); err == nil || !strings.Contains(err.Error(), "auto, cockroach, postgres") {
		t.Errorf("ParseFlavor(mysql) = %v", err)
	}
}

func TestConnectAndDetect(t *testing.T) {
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDB(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f, v, err := Detect(ctx, pool)
	if err != nil || f != Postgres || !strings.HasPrefix(v, "PostgreSQL") {
		t.Fatalf("Detect = %v %q %v", f, v, err)
	}
	var tz string
	pool.QueryRow(ctx, "SHOW TimeZone").Scan(&tz)
	if tz != "UTC" {
		t.Errorf("TimeZone = %q, want UTC", tz)
	}
}

// Errors name the problem and never the URL's password.
func TestConnectErrorsKeepPasswordOut(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	const secret = "s3cr3t-pa55word"
	for name, url := range map[string]string{
		"refused":    "postgres://root:" + secret + "@" + addr + "/db?sslmode=disable",
		"bad url":    "postgres://root:" + secret + "@host:notaport/db",
		"bad option": "postgres://root:" + secret + "@" + addr + "/db?sslmode=bogus",
	} {
		_, err := Connect(ctx, url, Config{ConnectTimeout: 2 * time.Second})
		if err == nil {
			t.Fatalf("%s: connected", name)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
		if name == "refused" && !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v is not ErrUnavailable", name, err)
		}
	}
	// Wrong password on a real server: unavailable, password not shown.
	good := pgtest.NewDB(t)
	bad := strings.Replace(good, "@", "x@", 1)
	if _, err := Connect(ctx, bad, Config{}); err == nil || !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "x@") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	pool, err := Connect(ctx, pgtest.NewDB(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	steps := []Migration{{1, "CREATE TABLE console.t1 (a INT)"}, {2, "ALTER TABLE console.t1 ADD COLUMN b INT"}}
	for i := 0; i < 2; i++ {
		if err := Migrate(ctx, pool, Postgres, "test", steps); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	steps = append(steps, Migration{3, "ALTER TABLE console.t1 ADD COLUMN c INT"})
	if err := Migrate(ctx, pool, Postgres, "test", steps); err != nil {
		t.Fatal(err)
	}
	var n int
	pool.QueryRow(ctx, "SELECT count(*) FROM console.schema_migrations WHERE component = 'test'").Scan(&n)
	if n != 3 {
		t.Errorf("%d versions recorded", n)
	}
	// A failing step is not recorded and reports its version.
	err = Migrate(ctx, pool, Postgres, "test", append(steps, Migration{4, "ALTER TABLE nope ADD COLUMN x INT"}))
	if err == nil || !strings.Contains(err.Error(), "version 4") {
		t.Errorf("failing step: %v", err)
	}
}
