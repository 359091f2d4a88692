// Package ssotest runs a real OpenID Provider on a loopback port for tests: zitadel/oidc's
// provider package (op) with its example in-memory storage and login page, plus a groups
// claim per user. Starting one sets slog's default logger to warnings on stderr (the example
// server insists on setting it). Tests sign in through it with a browser (the login form at
// /login/username) or with Login, a plain HTTP client that follows the same redirects.
package ssotest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person the provider knows.
type User struct {
	ID, Username, Password, Email string
	EmailVerified                 bool
	Groups                        []string
	// GroupsInUserInfoOnly leaves the groups out of the ID token: only the UserInfo endpoint
	// tells them.
	GroupsInUserInfoOnly bool
}

// Options configure a provider.
type Options struct {
	ClientID, ClientSecret string
	// RedirectURIs are the client's registered callbacks.
	RedirectURIs []string
	Users        []User
}

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is its issuer URL (http://127.0.0.1:<port>).
	Issuer string
	srv    *http.Server
	// Down, when set, makes every request fail with 503 (a provider that is down).
	Down atomic.Bool
}

// Start runs a provider on a free loopback port until the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String()}
	users := userStore{}
	for _, u := range o.Users {
		users[u.ID] = u
	}
	st := &storage{
		Storage: exstorage.NewStorageWithClients(users, map[string]*exstorage.Client{
			o.ClientID: exstorage.WebClient(o.ClientID, o.ClientSecret, o.RedirectURIs...),
		}),
		users: users,
	}
	// The example server logs every request at INFO through slog's default logger, and sets that
	// default to the logger it is given: keep warnings only.
	router := exampleop.SetupServer(p.Issuer, st, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), false)
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.Down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			router.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
	})
	return p
}

// userStore is the example storage's UserStore over the test's users.
type userStore map[string]User

func (u userStore) GetUserByID(id string) *exstorage.User {
	if x, ok := u[id]; ok {
		return exUser(x)
	}
	return nil
}

func (u userStore) GetUserByUsername(name string) *exstorage.User {
	for _, x := range u {
		if x.Username == name {
			return exUser(x)
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return "service" }

func exUser(x User) *exstorage.User {
	return &exstorage.User{ID: x.ID, Username: x.Username, Password: x.Password, FirstName: x.Username, LastName: "Test",
		Email: x.Email, EmailVerified: x.EmailVerified, PreferredLanguage: language.English}
}

// storage adds the groups claim to the example storage: in the ID token (through
// SetUserinfoFromRequest) and at the UserInfo endpoint (SetUserinfoFromToken).
type storage struct {
	*exstorage.Storage
	users userStore
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if u, ok := s.users[req.GetSubject()]; ok {
		// Userinfo scopes are left out of ID tokens that come with an access token: add the
		// e-mail back, as many providers do.
		ui.Email, ui.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
		if !u.GroupsInUserInfoOnly && u.Groups != nil {
			ui.AppendClaims("groups", u.Groups)
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	if u, ok := s.users[subject]; ok && u.Groups != nil {
		ui.AppendClaims("groups", u.Groups)
	}
	return nil
}

// Login follows a console's SSO sign-in with a plain HTTP client: it GETs start (the console's
// /login/oidc URL), posts username and password to the provider's login form, and follows the
// redirects back to the console. It returns the client (with the console's cookies) and the
// last response, whose body is read and closed.
func Login(ctx context.Context, start, username, password string) (*http.Client, *http.Response, string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := get(ctx, c, start)
	if err != nil {
		return nil, nil, "", err
	}
	// The provider's login page carries the auth request ID in its form.
	body, _ := readBody(resp)
	loginURL := resp.Request.URL
	id := between(body, `name="id" value="`, `"`)
	if id == "" {
		return c, resp, body, errors.New("ssotest: no provider login form at " + loginURL.String())
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	action := loginURL.ResolveReference(&url.URL{Path: "/login/username"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return c, nil, "", err
	}
	body, err = readBody(resp)
	return c, resp, body, err
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

func readBody(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), err
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}
