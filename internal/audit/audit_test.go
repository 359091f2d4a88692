package audit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openStore opens the audit store on a fresh database; the pool closes with the test.
func openStore(t *testing.T) (*pgxpool.Pool, *Store) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewDB(t), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(ctx, pool, pgdb.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	return pool, s
}

func TestRecordAndList(t *testing.T) {
	ctx := context.Background()
	_, s := openStore(t)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 25; i++ {
		e := Entry{Admin: fmt.Sprintf("admin%d", i%2), Action: Issue, Target: fmt.Sprintf("user%d", i%3), SessionID: int64(1000 + i), ExpiresAt: &exp}
		if i%5 == 0 {
			e = Entry{Admin: "admin0", Action: RevokeAll, Target: "user0", Count: int64(i)}
		}
		if err := s.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(ctx, Filter{Limit: 100})
	if err != nil || len(all.Entries) != 25 {
		t.Fatalf("List all: %d, %v", len(all.Entries), err)
	}
	if !slices.IsSortedFunc(all.Entries, func(a, b Entry) int { return int(b.ID - a.ID) }) {
		t.Error("not newest first")
	}
	first := all.Entries[len(all.Entries)-1]
	if first.Admin != "admin0" || first.Action != RevokeAll || first.Count != 0 || first.ExpiresAt != nil {
		t.Errorf("oldest entry %+v", first)
	}
	if e := all.Entries[len(all.Entries)-2]; e.ExpiresAt == nil || !e.ExpiresAt.Equal(exp) || e.SessionID != 1001 {
		t.Errorf("issue entry %+v", e)
	}
	// Filters combine; paging walks the same rows both ways.
	f := Filter{Admin: "admin0", Action: Issue, Limit: 3}
	var want []int64
	for _, e := range all.Entries {
		if e.Admin == "admin0" && e.Action == Issue {
			want = append(want, e.ID)
		}
	}
	var got []int64
	var pages []Page
	p, err := s.List(ctx, f)
	for ; err == nil; p, err = s.List(ctx, Filter{Admin: "admin0", Action: Issue, Limit: 3, Before: p.Older}) {
		pages = append(pages, p)
		for _, e := range p.Entries {
			got = append(got, e.ID)
		}
		if p.Older == 0 {
			break
		}
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("paged %v (%v), want %v", got, err, want)
	}
	back, err := s.List(ctx, Filter{Admin: "admin0", Action: Issue, Limit: 3, After: pages[len(pages)-1].Newer})
	if err != nil || back.Entries[0].ID != pages[len(pages)-2].Entries[0].ID {
		t.Errorf("previous page: %+v %v", back, err)
	}
	var n int
	s.Each(ctx, Filter{Target: "user0"}, func(Entry) error { n++; return nil })
	want0 := 0
	for _, e := range all.Entries {
		if e.Target == "user0" {
			want0++
		}
	}
	if n != want0 {
		t.Errorf("Each(target user0) = %d, want %d", n, want0)
	}
}
