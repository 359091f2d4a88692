package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The command line's --format=csv stays cockroach's byte for byte: a username that a
// spreadsheet would read as a formula is printed as it is (only the web exports neutralise).
func TestCLICSVNotNeutralised(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	name := `=HYPERLINK("http://evil.example")`
	tg.exec(t, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
	t.Cleanup(func() { tg.db(t).Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize()) })
	out := tg.ok(t, "auth-session", "login", name, "--format=csv")
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], `"=HYPERLINK(""http://evil.example"")",`) {
		t.Errorf("login --format=csv:\n%s", out)
	}
	out = tg.ok(t, "auth-session", "list", "--format=csv")
	lines = strings.Split(out, "\n")
	if len(lines) != 3 || lines[0] != "username,session ID,created,expires,revoked,last used" ||
		!strings.HasPrefix(lines[1], `"=HYPERLINK(""http://evil.example"")",1,`) {
		t.Errorf("list --format=csv:\n%s", out)
	}
}
