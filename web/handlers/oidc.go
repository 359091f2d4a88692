package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/sso"
	"github.com/sessionconsole/console/web/templates"
)

// Single sign-on through an OpenID Provider (internal/sso does the protocol): /login/oidc
// sends the browser to the provider with a fresh state, nonce and PKCE challenge, kept in a
// short-lived encrypted cookie; the callback checks them, maps the person's role claim to a
// role, and starts an admin session like a password sign-in does, audited as oidc:<name>.

const (
	ssoCookie = "console_sso"
	// ssoFlowMaxAge bounds how long a sign-in at the provider may take, in seconds.
	ssoFlowMaxAge = 600
)

// ssoFlowCookie keeps the flow. SameSite=Lax, not Strict: the provider's redirect back is a
// cross-site navigation, on which browsers send only Lax cookies.
func (h *Handler) ssoFlowCookie(value string, maxAge int) *http.Cookie {
	ck := h.cookie(ssoCookie, value, maxAge)
	ck.SameSite = http.SameSiteLaxMode
	return ck
}

func (h *Handler) startSSO(c echo.Context) error {
	next := localPath(c.QueryParam("next"))
	flow, authURL, err := h.sso.Begin(c.Request().Context(), next)
	if err != nil {
		h.log.Warn("single sign-on: provider unavailable", "err", err)
		return h.ssoProblem(c, http.StatusServiceUnavailable, templates.SSOProblem{Heading: "Single sign-on is unavailable",
			Message: "The identity provider " + h.sso.Name() + " cannot be reached right now. Try again in a moment" + h.orPassword() + ".",
			Retry:   true})
	}
	b, _ := json.Marshal(flow)
	enc, err := securecookieEncode(h, ssoCookie, string(b))
	if err != nil {
		return err
	}
	c.SetCookie(h.ssoFlowCookie(enc, ssoFlowMaxAge))
	noStore(c)
	return c.Redirect(http.StatusSeeOther, authURL)
}

func (h *Handler) orPassword() string {
	if h.cfg.NoLocalLogin {
		return ""
	}
	return ", or sign in with a console password"
}

func (h *Handler) finishSSO(c echo.Context) error {
	var flow sso.Flow
	if ck, err := c.Cookie(h.cookieName(ssoCookie)); err == nil {
		if raw, err := securecookieDecode(h, ssoCookie, ck.Value); err == nil {
			json.Unmarshal([]byte(raw), &flow)
		}
	}
	c.SetCookie(h.ssoFlowCookie("", -1)) // one use
	q := c.QueryParams()
	ctx := c.Request().Context()
	id, err := h.sso.Finish(ctx, flow, sso.Callback{State: q.Get("state"), Code: q.Get("code"),
		Error: q.Get("error"), ErrorDescription: q.Get("error_description")})
	failed := func(detail string) {
		h.note(c, actions.Actor{Kind: actions.Admin, Name: "oidc:?", RemoteAddr: c.RealIP()},
			audit.Entry{Action: audit.SignInFailed, Detail: storableText(detail, 200)})
	}
	var noRole *sso.NoRoleError
	switch {
	case errors.Is(err, sso.ErrState):
		failed("single sign-on: state does not match")
		return h.ssoProblem(c, http.StatusBadRequest, templates.SSOProblem{Heading: "Sign-in not completed",
			Message: "This sign-in did not come back with the state this browser started it with: an old or second tab, an expired sign-in, or a link someone else made. Start again.",
			Retry:   true})
	case errors.Is(err, sso.ErrUnavailable):
		h.log.Warn("single sign-on: provider unavailable", "err", err)
		return h.ssoProblem(c, http.StatusServiceUnavailable, templates.SSOProblem{Heading: "Single sign-on is unavailable",
			Message: "The identity provider " + h.sso.Name() + " cannot be reached right now. Try again in a moment" + h.orPassword() + ".",
			Retry:   true})
	case errors.Is(err, sso.ErrProvider):
		h.log.Warn("single sign-on failed", "err", err)
		failed("single sign-on: " + err.Error())
		return h.ssoProblem(c, http.StatusBadGateway, templates.SSOProblem{Heading: "Sign-in not completed",
			Message: "The identity provider " + h.sso.Name() + " did not complete the sign-in. Try again" + h.orPassword() + ".",
			Retry:   true})
	case errors.As(err, &noRole):
		detail := "no role for " + strings.Join(noRole.Values, ", ")
		if len(noRole.Values) == 0 {
			detail = "no role: the role claim is missing or empty"
		}
		if err := h.admins.RefuseOIDC(ctx, noRole.Identity.Key, audit.Entry{Admin: noRole.Identity.Name,
			RemoteAddr: c.RealIP(), Detail: storableText(detail, 200)}); err != nil {
			return err
		}
		return h.ssoProblem(c, http.StatusForbidden, templates.SSOProblem{Heading: "No access to the console",
			Message: "The identity provider signed you in, but none of your groups gives a console role. Ask the console's owners to give one of them a role, or to add you to a group that has one.",
			Who:     noRole.Identity.Name, Claim: h.ssoClaim(), Values: noRole.Values})
	case err != nil:
		return err
	}
	name, sid, err := h.admins.SignInOIDC(ctx, admins.OIDCIdentity{Key: id.Key, Name: id.Name, Fallback: id.Fallback, Role: id.Role},
		admins.SessionMeta{Method: admins.MethodOIDC, RemoteAddr: c.RealIP(), UserAgent: c.Request().UserAgent()},
		audit.Entry{RemoteAddr: c.RealIP()})
	if err != nil {
		return err
	}
	if err := h.setAdminCookie(c, sid); err != nil {
		return err
	}
	h.clearCookie(c, csrfCookie)
	next := flow.Next
	if next == "" {
		next = "/overview"
	}
	// Not a redirect: the admin cookie is SameSite=Strict, and browsers leave such cookies off
	// every request of a navigation that a redirect from another site started. A page that
	// moves on by itself (meta refresh) starts a new, same-site navigation.
	noStore(c)
	return h.render(c, http.StatusOK, templates.SSODone(templates.SSOContinue{Page: h.page(c, "Signed in", ""), Name: name, Next: next}))
}

// ssoClaim names the role claim for the refused page.
func (h *Handler) ssoClaim() string { return h.sso.RoleClaim() }

func (h *Handler) ssoProblem(c echo.Context, status int, v templates.SSOProblem) error {
	v.Page = h.page(c, v.Heading, "")
	noStore(c)
	return h.render(c, status, templates.SSOProblemView(v))
}
