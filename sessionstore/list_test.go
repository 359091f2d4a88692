package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// seedList makes sessions for a few users with known statuses and returns them by ID.
func seedList(t *testing.T, e *env, users []string) map[int64]Session {
	t.Helper()
	ctx := context.Background()
	all := map[int64]Session{}
	for _, u := range users {
		e.createUser(t, u)
		for i := 0; i < 7; i++ {
			is := e.issue(t, u, time.Duration(i+1)*time.Hour)
			switch i % 3 {
			case 1:
				e.exec(t, `UPDATE `+e.s.Table()+` SET "expiresAt" = "createdAt" - INTERVAL '1 minute' WHERE id = $1`, is.ID)
			case 2:
				if _, err := e.s.RevokeSession(ctx, is.ID); err != nil {
					t.Fatal(err)
				}
			}
			got, err := e.s.Get(ctx, is.ID)
			if err != nil {
				t.Fatal(err)
			}
			all[is.ID] = got
		}
	}
	return all
}

// expect lists the seeded sessions a filter should return, in the filter's order.
func expect(all map[int64]Session, f Filter, now time.Time) []int64 {
	var out []Session
	for _, s := range all {
		if f.Username != "" && !(s.Username == f.Username || f.Prefix && len(s.Username) >= len(f.Username) && s.Username[:len(f.Username)] == f.Username) {
			continue
		}
		if f.Status != StatusAll && f.Status != "" && s.StatusAt(now) != f.Status {
			continue
		}
		out = append(out, s)
	}
	key := func(s Session) time.Time {
		switch f.Sort {
		case SortExpires:
			return s.ExpiresAt
		case SortLastUsed:
			return s.LastUsedAt
		}
		return s.CreatedAt
	}
	slices.SortFunc(out, func(a, b Session) int {
		c := key(a).Compare(key(b))
		if c == 0 {
			c = int(a.ID - b.ID)
			if a.ID > b.ID {
				c = 1
			} else if a.ID < b.ID {
				c = -1
			}
		}
		if f.Desc {
			c = -c
		}
		return c
	})
	ids := make([]int64, len(out))
	for i, s := range out {
		ids[i] = s.ID
	}
	return ids
}

func TestListFiltersSortsAndPages(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := uniqueName("lst")
		users := []string{p + "_ann", p + "_annie", p + "_bob", p + "%x", p + "_x"}
		all := seedList(t, e, users)
		now := time.Now().UTC()
		var filters []Filter
		for _, user := range []struct {
			name   string
			prefix bool
		}{{"", false}, {p + "_ann", false}, {p + "_ann", true}, {p + "%", true}, {p + "_", true}, {p, true}} {
			for _, st := range []Status{StatusAll, StatusActive, StatusExpired, StatusRevoked} {
				for _, sk := range []SortKey{SortCreated, SortExpires, SortLastUsed} {
					for _, desc := range []bool{false, true} {
						filters = append(filters, Filter{Username: user.name, Prefix: user.prefix, Status: st, Sort: sk, Desc: desc})
					}
				}
			}
		}
		for _, f := range filters {
			name := fmt.Sprintf("%q/prefix=%v/%s/%s/desc=%v", f.Username, f.Prefix, f.Status, f.Sort, f.Desc)
			want := expect(all, f, now)
			// Walk forward in pages of 4, then back, and compare with the expected order.
			var got []int64
			f.Limit = 4
			page, err := e.s.List(ctx, f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if page.Prev != nil {
				t.Errorf("%s: first page has a previous cursor", name)
			}
			pages := [][]int64{ids(page)}
			got = append(got, ids(page)...)
			for page.Next != nil {
				g := f
				g.After = page.Next
				if page, err = e.s.List(ctx, g); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				pages = append(pages, ids(page))
				got = append(got, ids(page)...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", name, got, want)
				continue
			}
			// Back from the last page: each previous page is the one seen going forward.
			for i := len(pages) - 1; i > 0; i-- {
				if page.Prev == nil {
					t.Fatalf("%s: page %d has no previous cursor", name, i)
				}
				g := f
				g.Before = page.Prev
				if page, err = e.s.List(ctx, g); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(page), pages[i-1]) {
					t.Errorf("%s: back to page %d: %v, want %v", name, i-1, ids(page), pages[i-1])
				}
				if page.Next == nil {
					t.Errorf("%s: page %d reached backwards has no next cursor", name, i-1)
				}
			}
			if len(pages) > 1 && page.Prev != nil {
				t.Errorf("%s: first page reached backwards has a previous cursor", name)
			}
		}
		// Each streams the same rows in the same order.
		f := Filter{Username: p, Prefix: true, Status: StatusAll, Sort: SortExpires, Desc: true}
		var streamed []int64
		if err := e.s.Each(ctx, f, func(s Session) error { streamed = append(streamed, s.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := expect(all, f, now); !slices.Equal(streamed, want) {
			t.Errorf("Each: %v, want %v", streamed, want)
		}
		stop := errors.New("stop")
		n := 0
		if err := e.s.Each(ctx, f, func(Session) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("Each did not stop at the callback's error: %v after %d", err, n)
		}
	})
}

func ids(p Page) []int64 {
	out := make([]int64, len(p.Sessions))
	for i, s := range p.Sessions {
		out[i] = s.ID
	}
	return out
}

func TestListBadInput(t *testing.T) {
	e := newEnv(t, "postgres")
	ctx := context.Background()
	c := Cursor{At: time.Now(), ID: 1}
	for name, f := range map[string]Filter{
		"both cursors":   {After: &c, Before: &c},
		"bad sort":       {Sort: "username; DROP TABLE x"},
		"bad status":     {Status: "zombie"},
		"page too large": {Limit: MaxPageSize + 1},
		"bad username":   {Username: "a\x00b"},
	} {
		if _, err := e.s.List(ctx, f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
	// SQL-looking text is only data.
	for _, u := range []string{"' OR '1'='1", "x'; DROP TABLE console.web_sessions; --", `\`, "%", "_"} {
		for _, prefix := range []bool{false, true} {
			if p, err := e.s.List(ctx, Filter{Username: u, Prefix: prefix}); err != nil || len(p.Sessions) != 0 {
				t.Errorf("List(%q, prefix=%v) = %d rows, %v", u, prefix, len(p.Sessions), err)
			}
		}
	}
	if n := e.rowCount(t); n != 0 {
		t.Errorf("table has %d rows", n)
	}
	for _, s := range []string{"", "x", "2022-08-02T16:47:36.342338Z", "2022-08-02T16:47:36.342338Z_", "nope_12", "2022-08-02T16:47:36.342338Z_1x"} {
		if _, err := ParseCursor(s); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseCursor(%q) = %v", s, err)
		}
	}
	c2, err := ParseCursor(c.String())
	if err != nil || c2.ID != c.ID || !c2.At.Equal(c.At.UTC().Truncate(time.Microsecond)) {
		t.Errorf("cursor round trip: %+v %v", c2, err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"a": "b", "ab": "ac", "a\U0010FFFF": "b", "\U0010FFFF": "", "é": "ê", "\uD7FF": "\uE000", "": ""} {
		got, ok := prefixEnd(in)
		if got != want || ok != (want != "") {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestCounts(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := uniqueName("cnt")
		seedList(t, e, []string{p + "_a", p + "_b"})
		c, err := e.s.Counts(ctx, Filter{Username: p + "_a"})
		if err != nil {
			t.Fatal(err)
		}
		// Per user: i = 0..6, i%3: 0 active (3), 1 expired (2), 2 revoked (2).
		if c.Active != 3 || c.Expired != 2 || c.Revoked != 2 || c.Total() != 7 {
			t.Errorf("counts for one user = %+v", c)
		}
		if c, _ = e.s.Counts(ctx, Filter{Username: p, Prefix: true}); c.Active != 6 || c.Total() != 14 {
			t.Errorf("counts for the prefix = %+v", c)
		}
		// A write through the store is counted at once, not after the cache ages.
		if _, err := e.s.RevokeUser(ctx, p+"_a"); err != nil {
			t.Fatal(err)
		}
		if c, _ = e.s.Counts(ctx, Filter{Username: p + "_a"}); c.Active != 0 || c.Expired != 0 || c.Revoked != 7 {
			t.Errorf("after revoke-all = %+v", c)
		}
		e.issue(t, p+"_b", time.Hour)
		if c, _ = e.s.Counts(ctx, Filter{}); c.Active != 4 || c.Total() != 15 {
			t.Errorf("all after issue = %+v", c)
		}
	})
}

// Revoke-all and issue adjust the cached counts instead of counting the table again, and the
// adjusted counts equal a fresh count.
func TestCountsAdjusted(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := uniqueName("adj")
		seeded := seedList(t, e, []string{p + "_a", p + "_b"})
		filters := []Filter{{Username: p + "_a"}, {Username: p + "_b"}, {Username: p, Prefix: true}}
		for _, f := range filters {
			if _, err := e.s.Counts(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := e.s.EndUserSessions(ctx, p+"_a"); err != nil {
			t.Fatal(err)
		}
		b1 := e.issue(t, p+"_b", time.Hour)
		var expired int64 // a session of _b that had expired before the counts were taken
		for id, sess := range seeded {
			if sess.Username == p+"_b" && sess.StatusAt(time.Now()) == StatusExpired {
				expired = id
			}
		}
		for _, id := range []int64{b1.ID, b1.ID, expired} { // the second time changes nothing
			if _, err := e.s.RevokeSession(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range filters {
			got, err := e.s.Counts(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.s.count(ctx, e.s.countKey(f))
			if err != nil {
				t.Fatal(err)
			}
			if got.Active != want.Active || got.Expired != want.Expired || got.Revoked != want.Revoked {
				t.Errorf("%+v: cached counts %+v, counted %+v", f, got, want)
			}
		}
	})
}

// The auditors' filters: a session ID, and created, expires and last-used ranges (after
// inclusive, before exclusive), combined with the others.
func TestListIDAndTimeRanges(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		u := uniqueName("ranges")
		all := seedList(t, e, []string{u})
		var ids []int64
		for id := range all {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		// Spread creation over days: session i was created i days ago at noon.
		base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
		for i, id := range ids {
			c := base.AddDate(0, 0, -i)
			e.exec(t, `UPDATE `+e.s.Table()+` SET "createdAt" = $2::TIMESTAMP, "lastUsedAt" = $2::TIMESTAMP + INTERVAL '1 hour', "expiresAt" = $2::TIMESTAMP + INTERVAL '2 days' WHERE id = $1`, id, c)
		}
		day := func(d int) time.Time { return time.Date(2026, 11, 20-d, 0, 0, 0, 0, time.UTC) }
		cases := []struct {
			name string
			f    Filter
			want []int64
		}{
			{"id", Filter{ID: ids[3]}, []int64{ids[3]}},
			{"unknown id", Filter{ID: 1 << 62}, nil},
			{"created on one day", Filter{CreatedAfter: day(2), CreatedBefore: day(1)}, []int64{ids[2]}},
			{"created after", Filter{CreatedAfter: day(1)}, []int64{ids[1], ids[0]}},
			{"created before", Filter{CreatedBefore: day(5)}, []int64{ids[6]}},
			{"expires range", Filter{ExpiresAfter: day(0).Add(12 * time.Hour), ExpiresBefore: day(-2)}, []int64{ids[2], ids[1]}},
			{"used exact bound is inclusive", Filter{UsedAfter: base.Add(time.Hour)}, []int64{ids[0]}},
			{"used before is exclusive", Filter{UsedBefore: base.AddDate(0, 0, -6).Add(time.Hour)}, nil},
			{"with user and status", Filter{Username: u, Status: StatusRevoked, CreatedAfter: day(6)}, nil},
		}
		for _, c := range cases {
			c.f.Sort = SortCreated
			p, err := e.s.List(ctx, c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			var got []int64
			for _, s := range p.Sessions {
				got = append(got, s.ID)
			}
			if c.name == "with user and status" {
				for _, s := range p.Sessions {
					if s.StatusAt(p.Now) != StatusRevoked || s.CreatedAt.Before(day(6)) {
						t.Errorf("%s: %+v", c.name, s)
					}
				}
				continue
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
	})
}

func TestParseTimeBound(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-11-03":                  time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC),
		"2026-11-03T14:05":            time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC),
		"2026-11-03 14:05":            time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC),
		" 2026-11-03 14:05:09 ":       time.Date(2026, 11, 3, 14, 5, 9, 0, time.UTC),
		"2026-11-03T14:05:09.123456Z": time.Date(2026, 11, 3, 14, 5, 9, 123456000, time.UTC),
		"2026-11-03 14:05:09.5":       time.Date(2026, 11, 3, 14, 5, 9, 500000000, time.UTC),
	} {
		got, err := ParseTimeBound(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTimeBound(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-13-01", "2026-11-03T25:00", "2026-11-03+01:00", "03/11/2026", "2026-11-03\x00"} {
		if _, err := ParseTimeBound(in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseTimeBound(%q): %v, want ErrInvalidInput", in, err)
		}
	}
}

// A page's rows are the sessions as Get reads them, field for field: the revoked ones with
// their own revocation time, the others with none (List reuses one set of scan destinations).
func TestListRowsAreWhole(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		p := uniqueName("whole")
		all := seedList(t, e, []string{p + "_a", p + "_b"})
		page, err := e.s.List(ctx, Filter{Username: p, Prefix: true, Status: StatusAll, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Sessions) != len(all) {
			t.Fatalf("%d rows, want %d", len(page.Sessions), len(all))
		}
		revoked := 0
		for _, got := range page.Sessions {
			want := all[got.ID]
			if got.Username != want.Username || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
				!got.LastUsedAt.Equal(want.LastUsedAt) || (got.RevokedAt == nil) != (want.RevokedAt == nil) ||
				got.RevokedAt != nil && !got.RevokedAt.Equal(*want.RevokedAt) {
				t.Errorf("row %d = %+v, want %+v", got.ID, got, want)
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Errorf("row %d: created in %v, want UTC", got.ID, got.CreatedAt.Location())
			}
			if got.RevokedAt != nil {
				revoked++
			}
		}
		if revoked == 0 || revoked == len(all) {
			t.Fatalf("%d of %d rows revoked: the test needs both kinds", revoked, len(all))
		}
	})
}
