package audit

import (
	"context"
	"slices"
	"testing"
	"time"
)

// The auditors' filters: prefix search on admin and target (as ranges: % and _ are plain
// characters), a session ID, a time range (since inclusive, until exclusive); and the reason
// is kept.
func TestAuditorFilters(t *testing.T) {
	ctx := context.Background()
	pool, s := openStore(t)
	entries := []Entry{
		{Admin: "alice", Action: Issue, Target: "root", SessionID: 7, Reason: "ticket 1"},
		{Admin: "alicia", Action: Revoke, Target: "roots", SessionID: 8},
		{Admin: "bob", Action: RevokeAll, Target: "web_user"},
		{Admin: "al%", Action: Issue, Target: "r_ot", SessionID: 7},
		{Admin: "cli:ops", Action: Issue, Target: "root", SessionID: 9},
	}
	for _, e := range entries {
		if err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Spread the entries over days: entry i happened on 2026-11-0(i+1) at noon.
	if _, err := pool.Exec(ctx, `UPDATE console.audit_log SET at = TIMESTAMPTZ '2026-11-01 12:00:00+00' + (id - 1) * INTERVAL '1 day'`); err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name string
		f    Filter
		want []string // admins, newest first
	}{
		{"admin prefix", Filter{Admin: "ali", AdminPrefix: true}, []string{"alicia", "alice"}},
		{"admin exact", Filter{Admin: "ali"}, nil},
		{"percent is plain", Filter{Admin: "al%", AdminPrefix: true}, []string{"al%"}},
		{"target prefix", Filter{Target: "root", TargetPrefix: true}, []string{"cli:ops", "alicia", "alice"}},
		{"underscore is plain", Filter{Target: "r_", TargetPrefix: true}, []string{"al%"}},
		{"session", Filter{SessionID: 7}, []string{"al%", "alice"}},
		{"since", Filter{Since: day(4)}, []string{"cli:ops", "al%"}},
		{"until is exclusive", Filter{Until: day(2).Add(12 * time.Hour)}, []string{"alice"}},
		{"one day", Filter{Since: day(3), Until: day(4)}, []string{"bob"}},
		{"combined", Filter{Admin: "a", AdminPrefix: true, Action: Issue, Since: day(1)}, []string{"al%", "alice"}},
	} {
		c.f.Limit = 50
		p, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, e := range p.Entries {
			got = append(got, e.Admin)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		var streamed []string
		if err := s.Each(ctx, c.f, func(e Entry) error { streamed = append(streamed, e.Admin); return nil }); err != nil || !slices.Equal(streamed, c.want) {
			t.Errorf("%s: Each %v %v, want %v", c.name, streamed, err, c.want)
		}
	}
	p, _ := s.List(ctx, Filter{SessionID: 7, Action: Issue, Admin: "alice", Limit: 5})
	if len(p.Entries) != 1 || p.Entries[0].Reason != "ticket 1" {
		t.Errorf("reason not kept: %+v", p.Entries)
	}
}
