package templates

import "net/url"

// View models of the admin management pages (/admins, /account, /set-password) and of single
// sign-on.

// AdminRow is one admin of the /admins table.
type AdminRow struct {
	Name   string
	Role   string
	Method string // "password" or "SSO"
	SSO    bool   // signs in by single sign-on: its role is the provider's, it has no password
	// LastSignIn is nil before the first sign-in.
	LastSignIn *TimeCell
	Sessions   int
	Throttled  bool
	Self       bool // the admin looking at the page
	Roles      []Option
	// MustChangePassword: it still has a one-time password.
	MustChangePassword bool
}

// TokenRow is one API token of the /admins page.
type TokenRow struct {
	Name, Role, CreatedBy string
	Created, Expires      TimeCell
	LastUsed              *TimeCell
	Expired               bool
}

// AddAdminForm is the form that adds an admin, with its errors.
type AddAdminForm struct {
	Name        string
	Roles       []Option
	Credentials []Option // "password" (one-time password) or "link" (set-password link)
	NameError   string
}

// TokenForm is the form that makes an API token, with its errors.
type TokenForm struct {
	Name        string
	Roles       []Option
	Presets     []Option
	Custom      string
	Max         string
	NameError   string
	ExpireError string
}

// OneTime is a secret shown once: a one-time password, a set-password link or an API token.
type OneTime struct {
	Kind    string // "password", "link" or "token"
	For     string // the admin or token it belongs to
	Secret  string // the password, the link's code, or the token
	Link    string // the set-password link (Kind "link")
	Expires string // when the link or token stops working
	Curl    string // a curl line using the token (Kind "token")
}

// AdminsPage is /admins: every admin and every API token, with the forms that change them.
type AdminsPage struct {
	Page
	Notice    string
	Error     string
	Result    *OneTime
	Admins    []AdminRow
	Add       AddAdminForm
	Tokens    []TokenRow
	TokenForm TokenForm
	// LocalLogin is false with --local-login=false: password admins cannot sign in.
	LocalLogin bool
}

// AdminConfirm is the confirmation of removing an admin or revoking a token: a dialog with
// htmx, a page without.
type AdminConfirm struct {
	Page
	Title, Message, Action, Button string
}

// AccountSession is one of the signed-in admin's own sessions.
type AccountSession struct {
	Handle    string
	Current   bool
	Method    string
	Created   TimeCell
	LastSeen  TimeCell
	Address   string
	UserAgent string
}

// AccountPage is /account: the signed-in admin's password and sessions.
type AccountPage struct {
	Page
	Notice string
	Error  string
	Name   string
	Method string
	// CanChangePassword: a password admin (SSO admins have none here).
	CanChangePassword  bool
	MustChangePassword bool
	CurrentError       string
	NewError           string
	Sessions           []AccountSession
}

// SetPasswordPage is /set-password, reached from a one-time set-password link.
type SetPasswordPage struct {
	Page
	Code      string
	Error     string
	CodeError string
	NewError  string
	Done      string // the admin whose password was set (the form is gone)
}

// SSOProblem is the page of a single sign-on that did not end in a session: a person the
// provider knows but who has no console role, a tampered or stale sign-in, or a provider that
// failed.
type SSOProblem struct {
	Page
	Heading string
	Message string
	// Who is the identity the provider named ("" when it named none).
	Who string
	// Values are the role claim's values it sent, for the person to pass on.
	Claim  string
	Values []string
	Retry  bool
}

// AdminURL is the path of an action on the admin name (escaped: single sign-on names may hold
// any printable character).
func AdminURL(name, action string) string {
	return "/admins/" + url.PathEscape(name) + "/" + action
}

// SSOContinue is the page that ends a single sign-on: it moves on to Next by itself.
type SSOContinue struct {
	Page
	Name string
	Next string
}
