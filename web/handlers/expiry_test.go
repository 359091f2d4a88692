package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/admins"
)

// Every expiry the web console takes (the issue form, the token form, the JSON API's sessions
// and tokens) takes the same syntax, days included, and refuses the same inputs. The CLI keeps
// cockroach's (sessionstore TestParseExpiry, cmd/console TestAdminRoles).
func TestExpirySyntaxSameEverywhere(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "expiry")
	browser := s.signIn(t)
	api := s.bearer(t, s.makeToken(t, "root-ops", admins.Owner))
	seq := 0
	// Each way answers the duration it gave (0: refused).
	ways := map[string]func(t *testing.T, expiry string) time.Duration{
		"issue form": func(t *testing.T, expiry string) time.Duration {
			r := browser.hxPost("/sessions", url.Values{"username": {user}, "expire_after": {"custom"}, "expire_custom": {expiry}})
			if r.StatusCode != http.StatusOK {
				return 0
			}
			return s.lifetime(t, `SELECT "expiresAt" - "createdAt" FROM console.web_sessions WHERE id = $1`, textOf(r.body, "issued-session-id"))
		},
		"sessions API": func(t *testing.T, expiry string) time.Duration {
			r := api.doBody("POST", "/api/v1/sessions", "application/json", fmt.Sprintf(`{"username": %q, "expire_after": %q}`, user, expiry))
			if r.StatusCode != http.StatusCreated {
				return 0
			}
			is := decode[apiIssued](t, r)
			return is.Session.ExpiresAt.Sub(is.Session.CreatedAt)
		},
		"token form": func(t *testing.T, expiry string) time.Duration {
			seq++
			name := fmt.Sprint("form", seq)
			r := browser.post("/tokens", url.Values{"name": {name}, "role": {"viewer"}, "expire_after": {"30d"}, "expire_custom": {expiry}})
			if r.StatusCode != http.StatusOK {
				return 0
			}
			return s.lifetime(t, `SELECT expires_at - created_at FROM console.api_tokens WHERE name = $1`, name)
		},
		"tokens API": func(t *testing.T, expiry string) time.Duration {
			seq++
			r := api.doBody("POST", "/api/v1/tokens", "application/json", fmt.Sprintf(`{"name": "api%d", "role": "viewer", "expire_after": %q}`, seq, expiry))
			if r.StatusCode != http.StatusCreated {
				return 0
			}
			tok := decode[apiNewToken](t, r).Token
			return tok.ExpiresAt.Sub(tok.CreatedAt)
		},
	}
	good := map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "+7d": 7 * 24 * time.Hour,
		"36h": 36 * time.Hour, "+2h": 2 * time.Hour, "90m": 90 * time.Minute, "1.5h": 90 * time.Minute}
	bad := []string{"1.5d", "7dd", "d", "-1d", "1d+2h", "1d-2h", "7D", "7 d", "1w", "500ms", "0d", "-2h", ""}
	for way, try := range ways {
		t.Run(way, func(t *testing.T) {
			for in, want := range good {
				if got := try(t, in); got != want {
					t.Errorf("%q gave %s, want %s", in, got, want)
				}
			}
			for _, in := range bad {
				if in == "" && way != "issue form" {
					continue // "": the APIs' default, the token form's chosen preset
				}
				if got := try(t, in); got != 0 {
					t.Errorf("%q was taken (%s), want it refused", in, got)
				}
			}
		})
	}
}

// lifetime reads an interval the query returns for arg.
func (s *server) lifetime(t *testing.T, query, arg string) time.Duration {
	t.Helper()
	var d time.Duration
	if err := s.pool.QueryRow(t.Context(), `SELECT (extract(epoch FROM (`+query+`)) * 1000000)::INT8 * 1000`, arg).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}
