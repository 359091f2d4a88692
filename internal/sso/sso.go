// Package sso signs console admins in through an OpenID Connect provider: the authorization
// code flow with PKCE, state and nonce, through golang.org/x/oauth2, with the ID token verified
// by github.com/coreos/go-oidc/v3 (no JOSE here). It maps a claim of the signed-in person
// (groups, say) to a console role. It knows nothing of HTTP requests or cookies: the web layer
// keeps a Flow between Begin and Finish.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sessionconsole/console/internal/admins"
)

// Errors of Finish; test them with errors.Is.
var (
	// ErrState: the state that came back is not the one this browser was sent with (a forged
	// or replayed callback, or a second sign-in started in another tab).
	ErrState = errors.New("sign-in state does not match")
	// ErrProvider: the provider refused or failed (its error, a failed code exchange, an ID
	// token that does not verify, a wrong nonce).
	ErrProvider = errors.New("identity provider sign-in failed")
	// ErrUnavailable: the provider cannot be reached.
	ErrUnavailable = errors.New("identity provider unreachable")
)

// NoRoleError is a sign-in that worked but whose identity maps to no console role.
type NoRoleError struct {
	Identity Identity
	// Values are the role claim's values the provider sent (at most a few, for the page).
	Values []string
}

func (e *NoRoleError) Error() string {
	return fmt.Sprintf("%s has no console role", e.Identity.Name)
}

// Config configures single sign-on.
type Config struct {
	// Issuer is the provider's issuer URL (discovery at Issuer/.well-known/openid-configuration).
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the console's callback as registered at the provider
	// (https://console.example/login/oidc/callback).
	RedirectURL string
	// Scopes are asked for; "openid" is always among them.
	Scopes []string
	// RoleClaim names the claim whose values map to roles; dots walk into objects
	// (realm_access.roles).
	RoleClaim string
	// Roles maps claim values to roles; a person with several mapped values gets the highest.
	Roles map[string]admins.Role
	// Name is what the sign-in button says: "Sign in with <Name>".
	Name string
	// HTTPClient talks to the provider (nil: one with a 10 s timeout).
	HTTPClient *http.Client
}

// DefaultScopes are the scopes asked for when none are configured.
var DefaultScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// DefaultRoleClaim is the claim read for roles when none is configured.
const DefaultRoleClaim = "groups"

// ParseRoles parses a role mapping: comma-separated role=value pairs, each role as often as
// needed ("viewer=ops-ro,operator=ops,owner=ops-admin,owner=sre").
func ParseRoles(s string) (map[string]admins.Role, error) {
	out := map[string]admins.Role{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("invalid role mapping %q: write role=claim-value, such as owner=ops-admin", pair)
		}
		role, err := admins.ParseRole(k)
		if err != nil {
			return nil, fmt.Errorf("invalid role mapping %q: %s", pair, strings.TrimPrefix(err.Error(), admins.ErrInvalid.Error()+": "))
		}
		v = strings.TrimSpace(v)
		if prev, dup := out[v]; dup && prev != role {
			return nil, fmt.Errorf("invalid role mapping: %q maps to both %s and %s", v, prev, role)
		}
		out[v] = role
	}
	if len(out) == 0 {
		return nil, errors.New("the role mapping is empty: give at least one role=claim-value, such as owner=ops-admin")
	}
	return out, nil
}

// Check reports what is missing or wrong in c.
func (c Config) Check() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("--oidc-issuer %q is not an http(s) URL", c.Issuer)
	case c.ClientID == "":
		return errors.New("--oidc-issuer needs --oidc-client-id")
	case c.RedirectURL == "":
		return errors.New("--oidc-issuer needs --oidc-redirect-url: the console's own address followed by " +
			"/login/oidc/callback, exactly as registered at the provider")
	case len(c.Roles) == 0:
		return errors.New("--oidc-issuer needs --oidc-roles, such as viewer=ops-ro,operator=ops,owner=ops-admin")
	}
	if r, err := url.Parse(c.RedirectURL); err != nil || (r.Scheme != "https" && r.Scheme != "http") || r.Host == "" {
		return fmt.Errorf("--oidc-redirect-url %q is not an http(s) URL", c.RedirectURL)
	}
	return nil
}

// CallbackPath is the path of RedirectURL, where the web layer serves the callback.
func (c Config) CallbackPath() string {
	u, err := url.Parse(c.RedirectURL)
	if err != nil || u.Path == "" {
		return "/login/oidc/callback"
	}
	return u.Path
}

// Client runs sign-ins against one provider. Discovery happens at the first sign-in (and again
// after a failure), so that the console starts, and local sign-in works, while the provider is
// down. Safe for concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
	retryAt  time.Time
}

// DiscoveryRetry is how long after a failed discovery the next sign-in tries again.
const DiscoveryRetry = 5 * time.Second

// New returns a client for c (see Config.Check).
func New(c Config) (*Client, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	if c.RoleClaim == "" {
		c.RoleClaim = DefaultRoleClaim
	}
	if c.Name == "" {
		u, _ := url.Parse(c.Issuer)
		c.Name = u.Hostname()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{cfg: c}, nil
}

// Name is the provider's name for the sign-in button.
func (c *Client) Name() string { return c.cfg.Name }

// RoleClaim is the claim whose values map to roles.
func (c *Client) RoleClaim() string { return c.cfg.RoleClaim }

// CallbackPath is where the provider sends the browser back.
func (c *Client) CallbackPath() string { return c.cfg.CallbackPath() }

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

// setup discovers the provider once.
func (c *Client) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, *oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.oauth, c.verifier, c.provider, nil
	}
	if time.Now().Before(c.retryAt) {
		return nil, nil, nil, fmt.Errorf("%w: discovery failed moments ago", ErrUnavailable)
	}
	// Discovery outlives the request that triggered it: the provider object is kept.
	p, err := oidc.NewProvider(c.ctx(context.WithoutCancel(ctx)), c.cfg.Issuer)
	if err != nil {
		c.retryAt = time.Now().Add(DiscoveryRetry)
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.provider = p
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID})
	c.oauth = &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: c.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: c.cfg.Scopes,
	}
	return c.oauth, c.verifier, c.provider, nil
}

// Flow is what the browser's sign-in must carry from Begin to Finish (in a short-lived,
// encrypted cookie): all three values are secrets.
type Flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	// Next is the console path to go to afterwards.
	Next string `json:"x,omitempty"`
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Begin starts a sign-in: it returns the flow to keep and the provider URL to send the
// browser to.
func (c *Client) Begin(ctx context.Context, next string) (Flow, string, error) {
	o, _, _, err := c.setup(ctx)
	if err != nil {
		return Flow{}, "", err
	}
	f := Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next}
	u := o.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return f, u, nil
}

// Identity is who signed in, as the console names them.
type Identity struct {
	// Key is the issuer and the subject: the person, for good.
	Key string
	// Name is "oidc:<email>" (a verified e-mail) or "oidc:<subject>"; Fallback is
	// "oidc:<subject>" (both made safe to show).
	Name, Fallback string
	Role           admins.Role
}

// Callback is what the provider sent back to the callback URL.
type Callback struct {
	State, Code             string
	Error, ErrorDescription string
}

// Finish completes a sign-in: it checks the state against the flow (ErrState), exchanges the
// code with the PKCE verifier, verifies the ID token and its nonce (ErrProvider), and maps the
// role claim (from the ID token, or else from the UserInfo endpoint) to a role
// (*NoRoleError when none maps).
func (c *Client) Finish(ctx context.Context, f Flow, cb Callback) (Identity, error) {
	if f.State == "" || subtle.ConstantTimeCompare([]byte(f.State), []byte(cb.State)) != 1 {
		return Identity{}, ErrState
	}
	if cb.Error != "" {
		return Identity{}, fmt.Errorf("%w: the provider answered %s", ErrProvider, safeText(cb.Error, 64))
	}
	if cb.Code == "" {
		return Identity{}, fmt.Errorf("%w: no authorization code", ErrProvider)
	}
	o, verifier, p, err := c.setup(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = c.ctx(ctx)
	tok, err := o.Exchange(ctx, cb.Code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: code exchange: %v", ErrProvider, exchangeError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, fmt.Errorf("%w: no ID token in the token response", ErrProvider)
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: ID token: %v", ErrProvider, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: ID token nonce does not match", ErrProvider)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: ID token claims: %v", ErrProvider, err)
	}
	values, found := claimValues(claims, c.cfg.RoleClaim)
	if !found && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo: %v", ErrProvider, err)
		}
		if ui.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("%w: userinfo is about another subject", ErrProvider)
		}
		var more map[string]any
		if err := ui.Claims(&more); err == nil {
			values, _ = claimValues(more, c.cfg.RoleClaim)
			for _, k := range []string{"email", "email_verified"} {
				if _, ok := claims[k]; !ok {
					claims[k] = more[k]
				}
			}
		}
	}
	id := c.identity(idt.Issuer, idt.Subject, claims)
	for _, v := range values {
		if r, ok := c.cfg.Roles[v]; ok && (!id.Role.Valid() || r.Allows(id.Role)) {
			id.Role = r
		}
	}
	if !id.Role.Valid() {
		shown := values
		if len(shown) > 5 {
			shown = shown[:5]
		}
		for i, v := range shown {
			shown[i] = safeText(v, 64)
		}
		return Identity{}, &NoRoleError{Identity: id, Values: shown}
	}
	return id, nil
}

// exchangeError keeps the provider's error code and drops the rest (which can echo request
// details).
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return safeText(re.ErrorCode, 64)
		}
		return "HTTP " + fmt.Sprint(re.Response.StatusCode)
	}
	return "the provider could not be reached"
}

func (c *Client) identity(issuer, subject string, claims map[string]any) Identity {
	sub := safeName(subject)
	if sub == "" {
		sum := sha256.Sum256([]byte(subject))
		sub = hex.EncodeToString(sum[:8])
	}
	id := Identity{Key: issuer + " " + subject, Name: "oidc:" + sub, Fallback: "oidc:" + sub}
	email, _ := claims["email"].(string)
	if verified, _ := claims["email_verified"].(bool); verified {
		if e := safeName(email); e != "" {
			id.Name = "oidc:" + e
		}
	}
	return id
}

// claimValues reads the claim at path (dots walk into objects) as a list of strings: a string
// or an array of strings (other members are ignored).
func claimValues(claims map[string]any, path string) ([]string, bool) {
	var v any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	case json.Number:
		return []string{x.String()}, true
	}
	return nil, true
}

// safeName returns s when it is fit to be part of an admin name (printable, no spaces,
// control or bidi characters, at most 128 bytes), "" otherwise.
func safeName(s string) string {
	if s == "" || len(s) > 128 || !utf8.ValidString(s) {
		return ""
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || !unicode.IsPrint(r) {
			return ""
		}
	}
	return s
}

// safeText makes provider-sent text fit to show: valid UTF-8, control and bidi characters
// replaced, at most n bytes.
func safeText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '\uFFFD'
		}
		return r
	}, s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
