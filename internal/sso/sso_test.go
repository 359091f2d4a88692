package sso

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/ssotest"
)

// callback is the console's side of the redirect: it records what the provider sent back.
type callback struct {
	url string
	got chan Callback
}

func startCallback(t *testing.T) *callback {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &callback{url: "http://" + ln.Addr().String() + "/login/oidc/callback", got: make(chan Callback, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		cb.got <- Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return cb
}

var users = []ssotest.User{
	{ID: "u-owner", Username: "olivia", Password: "olivia-pw", Email: "olivia@example.com", EmailVerified: true, Groups: []string{"staff", "ops-admin"}},
	{ID: "u-op", Username: "oscar", Password: "oscar-pw", Email: "oscar@example.com", EmailVerified: false, Groups: []string{"ops"}},
	{ID: "u-ui", Username: "uma", Password: "uma-pw", Email: "uma@example.com", EmailVerified: true, Groups: []string{"ops-ro"}, GroupsInUserInfoOnly: true},
	{ID: "u-none", Username: "rita", Password: "rita-pw", Email: "rita@example.com", EmailVerified: true, Groups: []string{"marketing"}},
}

func setup(t *testing.T) (*Client, *ssotest.Provider, *callback) {
	cb := startCallback(t)
	p := ssotest.Start(t, ssotest.Options{ClientID: "console", ClientSecret: "console-secret", RedirectURIs: []string{cb.url}, Users: users})
	roles, err := ParseRoles("viewer=ops-ro,operator=ops,owner=ops-admin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Issuer: p.Issuer, ClientID: "console", ClientSecret: "console-secret", RedirectURL: cb.url, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return c, p, cb
}

// signIn begins a flow, signs in at the provider as user and returns the flow and what came
// back to the callback.
func signIn(t *testing.T, c *Client, cb *callback, user, password string) (Flow, Callback) {
	t.Helper()
	ctx := context.Background()
	f, u, err := c.Begin(ctx, "/sessions")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "nonce=") || !strings.Contains(u, "state="+f.State) {
		t.Fatalf("authorization URL lacks PKCE, nonce or state: %s", u)
	}
	if _, _, _, err := ssotest.Login(ctx, u, user, password); err != nil {
		t.Fatal(err)
	}
	return f, <-cb.got
}

func TestSignIn(t *testing.T) {
	c, p, cb := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		user, pw, name, id string
		role               admins.Role
	}{
		{"olivia", "olivia-pw", "oidc:olivia@example.com", "u-owner", admins.Owner}, // highest of two groups
		{"oscar", "oscar-pw", "oidc:u-op", "u-op", admins.Operator},                 // e-mail not verified: the subject
		{"uma", "uma-pw", "oidc:uma@example.com", "u-ui", admins.Viewer},            // groups only from UserInfo
	} {
		f, back := signIn(t, c, cb, tc.user, tc.pw)
		id, err := c.Finish(ctx, f, back)
		if err != nil || id.Name != tc.name || id.Role != tc.role || id.Key != p.Issuer+" "+tc.id {
			t.Errorf("%s: Finish = %+v, %v", tc.user, id, err)
		}
		// A code works once.
		if _, err := c.Finish(ctx, f, back); !errors.Is(err, ErrProvider) {
			t.Errorf("%s: code used twice: %v", tc.user, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	c, p, cb := setup(t)
	ctx := context.Background()

	f, back := signIn(t, c, cb, "rita", "rita-pw")
	_, err := c.Finish(ctx, f, back)
	var nr *NoRoleError
	if !errors.As(err, &nr) || nr.Identity.Name != "oidc:rita@example.com" || strings.Join(nr.Values, ",") != "marketing" {
		t.Fatalf("unmapped user: %v", err)
	}

	f, back = signIn(t, c, cb, "olivia", "olivia-pw")
	tampered := back
	tampered.State = back.State[:len(back.State)-1] + "x"
	if _, err := c.Finish(ctx, f, tampered); !errors.Is(err, ErrState) {
		t.Errorf("tampered state: %v", err)
	}
	if _, err := c.Finish(ctx, Flow{}, back); !errors.Is(err, ErrState) {
		t.Errorf("no flow: %v", err)
	}
	wrongVerifier := f
	wrongVerifier.Verifier = f.Verifier[:len(f.Verifier)-2] + "xx"
	if _, err := c.Finish(ctx, wrongVerifier, back); !errors.Is(err, ErrProvider) {
		t.Errorf("wrong PKCE verifier: %v", err)
	}

	f, back = signIn(t, c, cb, "olivia", "olivia-pw")
	wrongNonce := f
	wrongNonce.Nonce = "not-the-nonce"
	if _, err := c.Finish(ctx, wrongNonce, back); !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("wrong nonce: %v", err)
	}
	if _, err := c.Finish(ctx, f, Callback{State: f.State, Error: "access_denied\x1b[31m"}); !errors.Is(err, ErrProvider) || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("provider error: %v", err)
	}

	// A provider that is down: the console still starts (New does not call it), and a
	// sign-in says it cannot reach it.
	p.Down.Store(true)
	c2, err := New(Config{Issuer: p.Issuer, ClientID: "console", RedirectURL: cb.url, Roles: map[string]admins.Role{"x": admins.Viewer}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Begin(ctx, ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("provider down: %v", err)
	}
}

func TestParseRoles(t *testing.T) {
	got, err := ParseRoles(" viewer=ops-ro, operator=ops ,owner=ops-admin,owner=sre")
	if err != nil || len(got) != 4 || got["sre"] != admins.Owner || got["ops-ro"] != admins.Viewer {
		t.Fatalf("ParseRoles = %v, %v", got, err)
	}
	for _, bad := range []string{"", "owner", "owner=", "root=x", "viewer=x,owner=x"} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	ok := Config{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://console.example/login/oidc/callback", Roles: map[string]admins.Role{"x": admins.Viewer}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"issuer":   func(c *Config) { c.Issuer = "idp.example" },
		"client":   func(c *Config) { c.ClientID = "" },
		"redirect": func(c *Config) { c.RedirectURL = "" },
		"roles":    func(c *Config) { c.Roles = nil },
		"bad url":  func(c *Config) { c.RedirectURL = "/callback" },
	} {
		c := ok
		mod(&c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := ok.CallbackPath(); got != "/login/oidc/callback" {
		t.Errorf("CallbackPath = %q", got)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com": "ann@example.com", "a b": "", "x\u202ey": "", "<b>": "<b>", "\x00": "", strings.Repeat("a", 129): "",
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}
