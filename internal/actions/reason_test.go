package actions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Issuing writes where the session came from into its auditInfo (console <admin>: <reason>,
// cli <os user>: <reason>); with RequireReason a reason must be given; a reason that is not one
// line of text is refused; nothing is written on refusal.
func TestIssueWritesAuditInfoAndReason(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		cli := Actor{Kind: CLI, Name: "ops"}
		cases := []struct {
			by     Actor
			reason string
			want   string
		}{
			{alice, "  ticket 42 ", "console alice: ticket 42"},
			{alice, "", "console alice"},
			{cli, "restore test", "cli ops: restore test"},
		}
		for _, c := range cases {
			is, err := e.svc.Issue(ctx, c.by, IssueRequest{User: "root", TTL: time.Hour, Note: Note{Reason: c.reason}})
			if err != nil {
				t.Fatal(err)
			}
			var info *string
			var reason string
			if err := e.direct.QueryRow(ctx, `SELECT "auditInfo" FROM `+e.table+` WHERE id = $1`, is.ID).Scan(&info); err != nil {
				t.Fatal(err)
			}
			if err := e.direct.QueryRow(ctx, `SELECT reason FROM console.audit_log WHERE session_id = $1`, is.ID).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if info == nil || *info != c.want || reason != strings.TrimSpace(c.reason) {
				t.Errorf("%+v %q: auditInfo %v, audit reason %q; want %q", c.by, c.reason, info, reason, c.want)
			}
		}
		before := e.count(t, "SELECT count(*) FROM "+e.table)
		e.svc.RequireReason(true)
		for reason, want := range map[string]error{
			"":                       ErrReasonRequired,
			"   ":                    ErrReasonRequired,
			"two\nlines":             ErrBadReason,
			"bell\a":                 ErrBadReason,
			strings.Repeat("x", 501): ErrBadReason,
			"bad \xff utf-8":         ErrBadReason,
		} {
			if _, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour, Note: Note{Reason: reason}}); !errors.Is(err, want) {
				t.Errorf("reason %q: %v, want %v", reason, err, want)
			}
		}
		if n := e.count(t, "SELECT count(*) FROM "+e.table); n != before {
			t.Errorf("a refused issue wrote a session: %d rows, had %d", n, before)
		}
		if _, err := e.svc.Issue(ctx, alice, IssueRequest{User: "root", TTL: time.Hour, Note: Note{Reason: "given"}}); err != nil {
			t.Errorf("issue with a reason under RequireReason: %v", err)
		}
	})
}
