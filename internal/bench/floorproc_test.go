package bench

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
	"github.com/sessionconsole/console/sessionstore"
)

// TestFloorProcess starts the HTTP floors as the bench does, in a process of their own (this
// test binary started again, TestMain calling MaybeServeFloors), over a seeded database, and
// checks that the process builds the same cases: its plain-text floors answer what this
// process's floors of the same cases write, its same-size floor replays the answer sent to it,
// and it ends when closed.
func TestFloorProcess(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDB(t)
	pool, err := pgdb.Connect(ctx, dbURL, pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := sessionstore.Open(ctx, pool, sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	data := DatasetFor(20_000, time.Now())
	seeded, err := Seed(ctx, pool, data, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	auditLog, err := audit.Open(ctx, pool, pgdb.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := backfillHistory(ctx, pool, store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(true)
	env := &sizeEnv{cfg: &cfg, pool: pool, store: store, seeded: seeded, data: data, logf: t.Logf}
	cases, _, err := env.buildCases(ctx, hist, auditLog)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]*benchCase{}
	for _, bc := range cases {
		byKey[bc.Key] = bc
	}

	f, err := startFloorProcess(floorSpec{DBURL: dbURL, Config: cfg, Data: data, Seeded: *seeded})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()
	if f.PID <= 0 || f.PID == os.Getpid() {
		t.Fatalf("floor process pid %d (this process: %d): not a process of its own", f.PID, os.Getpid())
	}
	c := NewClient(f.URL, 1)
	defer c.Close()

	t.Run("its floors read what ours read", func(t *testing.T) {
		for _, key := range []string{CaseFragment, CaseUserPage, CaseDeepPage, CaseHistoryFirst, CaseHistoryDeep, CaseUserDetail, CaseSessionPage} {
			var want bytes.Buffer
			if _, err := byKey[key].floor(ctx, &want, 0, 0); err != nil {
				t.Fatalf("%s: our floor: %v", key, err)
			}
			resp, err := c.Do(ctx, Request{Path: "/floor/" + key, Keep: true})
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if want.Len() == 0 || string(resp.Body) != want.String() {
				t.Errorf("%s: the floor process answered %q, our floor wrote %q", key, excerpt(resp.Body), excerpt(want.Bytes()))
			}
		}
		if _, err := c.Do(ctx, Request{Path: "/floor/" + CaseVerify}); err != nil {
			t.Errorf("verify's floor: %v", err)
		}
	})
	t.Run("same size: nothing before the answer is sent, then the answer", func(t *testing.T) {
		bc := byKey[CaseFragment]
		if _, err := c.Do(ctx, Request{Path: "/floor/" + CaseFragment + "/sized"}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("the same-size floor answered before an answer was sent: %v", err)
		}
		page := strings.Repeat("<tr><td>row</td></tr>", 2000)
		bc.record(Response{Status: http.StatusOK, Body: []byte(page), Header: http.Header{
			"Content-Type": {"text/html; charset=UTF-8"}, "Vary": {"HX-Request"}, "Set-Cookie": {"console_admin=x"}}})
		if err := f.send(ctx, bc); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(ctx, Request{Path: "/floor/" + CaseFragment + "/sized", Keep: true})
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != page || resp.Header.Get("Vary") != "HX-Request" || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("replayed %d bytes, Vary %q, Set-Cookie %q; want the recorded %d bytes, its Vary and no cookie",
				len(resp.Body), resp.Header.Get("Vary"), resp.Header.Get("Set-Cookie"), len(page))
		}
		other := &benchCase{Key: "nothing"}
		other.answer.Store(bc.answer.Load())
		if err := f.send(ctx, other); err == nil {
			t.Error("an answer for an unknown case was taken")
		}
	})
	t.Run("it ends when closed", func(t *testing.T) {
		closed = true
		if err := f.Close(); err != nil {
			t.Errorf("the floor process ended with %v", err)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(f.PID)); err == nil {
			t.Errorf("process %d still exists after Close", f.PID)
		}
	})
}
