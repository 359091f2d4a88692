package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSSOFlags(t *testing.T) {
	t.Setenv("CONSOLE_OIDC_CLIENT_SECRET", "")
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\nignored\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	ok := ssoFlags{issuer: "https://idp.example", clientID: "c", redirectURL: "https://console.example/login/oidc/callback",
		roles: "owner=ops-admin", roleClaim: "groups", localLogin: true, secretFile: secret}
	c, err := ok.client()
	if err != nil || c == nil || c.Name() != "idp.example" {
		t.Fatalf("client = %v, %v", c, err)
	}
	if s, _ := ok.clientSecret(); s != "s3cret" {
		t.Errorf("secret from the file = %q", s)
	}
	if c, err := (&ssoFlags{localLogin: true}).client(); c != nil || err != nil {
		t.Errorf("no issuer: %v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		mod  func(*ssoFlags)
		want string
	}{
		"local login off without SSO": {func(f *ssoFlags) { *f = ssoFlags{} }, "--local-login=false needs single sign-on"},
		"roles without issuer":        {func(f *ssoFlags) { *f = ssoFlags{localLogin: true, roles: "owner=x"} }, "--oidc-roles is set but --oidc-issuer is not"},
		"no roles":                    {func(f *ssoFlags) { f.roles = "" }, "--oidc-issuer needs --oidc-roles"},
		"bad roles":                   {func(f *ssoFlags) { f.roles = "admin=x" }, `--oidc-roles: invalid role mapping "admin=x"`},
		"no redirect":                 {func(f *ssoFlags) { f.redirectURL = "" }, "--oidc-issuer needs --oidc-redirect-url"},
		"secret twice":                {func(f *ssoFlags) { f.secret = "x" }, "give the client secret once"},
		"empty secret file":           {func(f *ssoFlags) { f.secretFile = empty }, "is empty"},
		"missing secret file":         {func(f *ssoFlags) { f.secretFile = empty + ".nope" }, "--oidc-client-secret-file"},
	} {
		f := ok
		tc.mod(&f)
		if _, err := f.client(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
