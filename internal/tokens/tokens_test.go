package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	pool, err := pgdb.Connect(ctx, pgtest.NewDB(t), pgdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := audit.Open(ctx, pool, pgdb.Postgres); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, pool, pgdb.Postgres, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var owner = audit.Entry{Admin: "admin", RemoteAddr: "192.0.2.1"}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	secret, tok, err := s.Create(ctx, "ci-export", admins.Viewer, time.Hour, owner)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, Prefix) || len(secret) < 40 || tok.Name != "ci-export" || tok.Role != admins.Viewer ||
		tok.CreatedBy != "admin" || tok.ExpiresAt.Sub(tok.CreatedAt) != time.Hour || tok.LastUsedAt != nil {
		t.Fatalf("Create = %q, %+v", secret, tok)
	}
	// Only a hash is stored.
	var stored int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM console.api_tokens WHERE position($1::BYTEA IN token_hash) > 0`, []byte(secret[4:20])).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatal("the token's secret is stored")
	}
	got, err := s.Authenticate(ctx, secret)
	if err != nil || got.Name != "ci-export" || got.Role != admins.Viewer {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
		t.Fatalf("List after use = %+v", list)
	}
	for _, bad := range []string{"", "sct_", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret), "Bearer " + secret, strings.Repeat("sct_", 40)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, "ci-export", admins.Owner, time.Hour, owner); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, c := range []struct {
		name string
		role admins.Role
		ttl  time.Duration
	}{{"<b>", admins.Viewer, time.Hour}, {"x", "root", time.Hour}, {"x", admins.Viewer, time.Second}, {"x", admins.Viewer, 367 * 24 * time.Hour}} {
		if _, _, err := s.Create(ctx, c.name, c.role, c.ttl, owner); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q, %q, %v) = %v", c.name, c.role, c.ttl, err)
		}
	}
	// Expired tokens stop working and stay listed until revoked.
	if _, err := s.pool.Exec(ctx, `UPDATE console.api_tokens SET expires_at = now() - INTERVAL '1 second'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("expired token: %v", err)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 || !list[0].Expired(time.Now()) {
		t.Errorf("expired token not listed as expired: %+v", list)
	}
	// Revoking ends it at once.
	secret2, _, _ := s.Create(ctx, "deploy", admins.Operator, time.Hour, owner)
	if err := s.Revoke(ctx, "deploy", owner); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret2); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("revoked token: %v", err)
	}
	if err := s.Revoke(ctx, "deploy", owner); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: %v", err)
	}
	var n int
	s.pool.QueryRow(ctx, `SELECT count(*) FROM console.audit_log WHERE admin = 'admin' AND action IN ('token-create', 'token-revoke')`).Scan(&n)
	if n != 3 {
		t.Errorf("%d audit entries, want 3 (two creates, one revoke)", n)
	}
}
