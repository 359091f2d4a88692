package admins

import (
	"fmt"
	"strings"
)

// Role is what an admin (or an API token) may do. Each role may do everything the roles before
// it may.
type Role string

// The roles, from least to most.
const (
	// Viewer reads every page, export and the audit log, and changes nothing.
	Viewer Role = "viewer"
	// Operator also issues and revokes sessions, one or all of a user's.
	Operator Role = "operator"
	// Owner also manages admins, API tokens and settings.
	Owner Role = "owner"
)

// Roles lists the roles from least to most.
var Roles = []Role{Viewer, Operator, Owner}

// ParseRole parses a role name (case-insensitive). Anything else is ErrInvalid.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", fmt.Errorf("%w: unknown role %q (possible values: viewer, operator, owner)", ErrInvalid, s)
	}
	return r, nil
}

// rank orders the roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Operator:
		return 2
	case Owner:
		return 3
	}
	return 0
}

// Allows reports whether r may do what needs the role need. An invalid role allows nothing.
func (r Role) Allows(need Role) bool {
	return r.rank() > 0 && need.rank() > 0 && r.rank() >= need.rank()
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Method is how an admin signs in.
type Method string

// The sign-in methods.
const (
	// MethodPassword is the console's own password (bcrypt hash in console.admins).
	MethodPassword Method = "password"
	// MethodOIDC is single sign-on through the OpenID Provider (--oidc-issuer).
	MethodOIDC Method = "oidc"
)
