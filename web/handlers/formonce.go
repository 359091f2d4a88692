package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/labstack/echo/v4"
)

// One-time form tokens make a repeated submission of the same form harmless: without
// JavaScript, reloading the page that answered an issue posts the form again, and a second
// click sends it twice. The issue form carries a token (form field form_once) made of a random
// key and an HMAC binding it to the admin session that got the page; the first submission
// claims the key in the database (admins.ClaimForm), a later one finds it claimed and issues
// nothing. A token from another admin session (another sign-in, another browser) is refused.
// A request without a token (a script posting the form) is not protected this way.

// adminSessionID returns the server-side admin session behind a request ("" when none).
func adminSessionID(c echo.Context) string {
	a, _ := c.Request().Context().Value(adminKey{}).(signedIn)
	return a.sessionID
}

// newFormToken returns a fresh one-time token for a form of this request's admin session.
func (h *Handler) newFormToken(c echo.Context) string {
	sid := adminSessionID(c)
	if sid == "" {
		return ""
	}
	b := make([]byte, 18)
	rand.Read(b)
	key := base64.RawURLEncoding.EncodeToString(b)
	return key + "." + h.formMAC(sid, key)
}

// formTokenKey returns the key of a submitted token when it was made for this request's admin
// session; ok is false for a malformed token or one of another session.
func (h *Handler) formTokenKey(c echo.Context, token string) (key string, ok bool) {
	sid := adminSessionID(c)
	key, mac, found := strings.Cut(token, ".")
	if sid == "" || !found || key == "" || len(token) > 128 {
		return "", false
	}
	return key, hmac.Equal([]byte(mac), []byte(h.formMAC(sid, key)))
}

func (h *Handler) formMAC(sid, key string) string {
	m := hmac.New(sha256.New, h.formKey)
	m.Write([]byte(sid + "\x00" + key))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
