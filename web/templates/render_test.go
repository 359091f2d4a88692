package templates

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
)

func table50() SessionsTable {
	t := SessionsTable{SelfURL: "/sessions?status=active", UpdatedAt: "12:00:00 UTC", StatusName: "active",
		Counts: Counts{Active: "200,000", Expired: "700,000", Revoked: "100,000", Total: "1,000,000", At: "3s ago"}}
	cell := TimeCell{Text: "2026-11-27 08:57:30.246062", Hint: "in 52m", ISO: "2026-11-27T08:57:30.246062Z"}
	for i := 0; i < 50; i++ {
		id := strconv.Itoa(784445853689282561 + i)
		t.Rows = append(t.Rows, SessionRow{ID: id, Username: "user" + strconv.Itoa(i), Created: cell, Expires: cell,
			Revoked: TimeCell{Text: "NULL"}, LastUsed: cell, Status: "active",
			RevokeURL: "/sessions/" + id + "/revoke?return=status%3Dactive", UserURL: "/sessions?user=user" + strconv.Itoa(i),
			RevokeAllURL: "/users/user" + strconv.Itoa(i) + "/revoke?return=status%3Dactive"})
	}
	t.NextURL = "/sessions?after=2026-11-27T08:57:30.246062Z_784445853689282611"
	return t
}

// The table fragment escapes what it shows and carries the hooks tests and htmx rely on.
func TestTableRenders(t *testing.T) {
	tb := table50()
	tb.Rows[0].Username = `<b>"x"</b>`
	var sb strings.Builder
	if err := Table(tb).Render(context.Background(), &sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	if n := strings.Count(out, `data-testid="session-row"`); n != 50 {
		t.Errorf("%d rows", n)
	}
	if strings.Contains(out, `<b>"x"</b>`) || !strings.Contains(out, "&lt;b&gt;&#34;x&#34;&lt;/b&gt;") {
		t.Error("username not escaped")
	}
	for _, want := range []string{`id="results"`, `hx-trigger="refresh, sessions-changed from:body"`, `data-testid="next-page"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func BenchmarkRenderTable50(b *testing.B) {
	tb := table50()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := Table(tb).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
