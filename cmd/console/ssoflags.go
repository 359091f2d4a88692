package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/sso"
)

// ssoFlags configure single sign-on through an OpenID Provider, and password sign-in beside it.
type ssoFlags struct {
	issuer, clientID, secret, secretFile string
	redirectURL, name                    string
	scopes                               []string
	roleClaim, roles                     string
	localLogin                           bool
	linkTTL                              time.Duration
}

func (f *ssoFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.issuer, "oidc-issuer", os.Getenv("CONSOLE_OIDC_ISSUER"),
		"single sign-on: the OpenID Provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration); empty: none [env CONSOLE_OIDC_ISSUER]")
	fl.StringVar(&f.clientID, "oidc-client-id", os.Getenv("CONSOLE_OIDC_CLIENT_ID"), "the console's client ID at the provider [env CONSOLE_OIDC_CLIENT_ID]")
	fl.StringVar(&f.secret, "oidc-client-secret", "",
		"the client secret (visible in the process list: prefer --oidc-client-secret-file or CONSOLE_OIDC_CLIENT_SECRET)")
	fl.StringVar(&f.secretFile, "oidc-client-secret-file", "", "a file whose first line is the client secret")
	fl.StringVar(&f.redirectURL, "oidc-redirect-url", os.Getenv("CONSOLE_OIDC_REDIRECT_URL"),
		"the console's callback as registered at the provider: its own address + /login/oidc/callback [env CONSOLE_OIDC_REDIRECT_URL]")
	fl.StringSliceVar(&f.scopes, "oidc-scopes", sso.DefaultScopes, "scopes to ask for (openid is always among them; add groups where the provider needs it)")
	fl.StringVar(&f.roleClaim, "oidc-role-claim", sso.DefaultRoleClaim, "the ID token (or UserInfo) claim whose values map to roles; dots walk into objects (realm_access.roles)")
	fl.StringVar(&f.roles, "oidc-roles", os.Getenv("CONSOLE_OIDC_ROLES"),
		"claim values that give roles, role=value, comma-separated, each role as often as needed: viewer=ops-ro,operator=ops,owner=ops-admin; a person with none is refused [env CONSOLE_OIDC_ROLES]")
	fl.StringVar(&f.name, "oidc-name", "", `the provider's name on the sign-in button ("Sign in with <name>"); default: the issuer's host`)
	fl.BoolVar(&f.localLogin, "local-login", true, "offer password sign-in (the break-glass way in beside single sign-on); false needs --oidc-issuer")
	fl.DurationVar(&f.linkTTL, "set-password-link-ttl", admins.DefaultLinkTTL, "how long a one-time set-password link made on /admins works")
}

// client returns the single sign-on client, or nil when --oidc-issuer is not set.
func (f *ssoFlags) client() (*sso.Client, error) {
	if f.issuer == "" {
		if !f.localLogin {
			return nil, errors.New("--local-login=false needs single sign-on (--oidc-issuer): nobody could sign in")
		}
		for name, v := range map[string]string{"--oidc-client-id": f.clientID, "--oidc-roles": f.roles, "--oidc-redirect-url": f.redirectURL} {
			if v != "" {
				return nil, fmt.Errorf("%s is set but --oidc-issuer is not", name)
			}
		}
		return nil, nil
	}
	secret, err := f.clientSecret()
	if err != nil {
		return nil, err
	}
	if f.roles == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-roles, such as viewer=ops-ro,operator=ops,owner=ops-admin")
	}
	roles, err := sso.ParseRoles(f.roles)
	if err != nil {
		return nil, fmt.Errorf("--oidc-roles: %w", err)
	}
	return sso.New(sso.Config{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: secret, RedirectURL: f.redirectURL,
		Scopes: f.scopes, RoleClaim: f.roleClaim, Roles: roles, Name: f.name})
}

// clientSecret reads the secret from exactly one of the flag, the file and the environment.
func (f *ssoFlags) clientSecret() (string, error) {
	env := os.Getenv("CONSOLE_OIDC_CLIENT_SECRET")
	n := 0
	for _, v := range []string{f.secret, f.secretFile, env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "", errors.New("give the client secret once: --oidc-client-secret, --oidc-client-secret-file or CONSOLE_OIDC_CLIENT_SECRET")
	}
	if f.secretFile == "" {
		return f.secret + env, nil
	}
	b, err := os.ReadFile(f.secretFile)
	if err != nil {
		return "", fmt.Errorf("--oidc-client-secret-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--oidc-client-secret-file %s is empty", f.secretFile)
	}
	return line, nil
}
