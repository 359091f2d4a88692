package sessionstore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// CookieName is the name of CockroachDB's HTTP session cookie.
const CookieName = "session"

// SecretLength is the length of a session secret in bytes, as CockroachDB makes them.
const SecretLength = 16

// ErrMalformedCookie means a cookie could not be decoded; the error text says why.
var ErrMalformedCookie = errors.New("malformed session cookie")

// Cookie is the content of a session cookie: the session's ID and its secret. The table holds
// only SHA-256(Secret). String and LogValue never reveal the secret.
type Cookie struct {
	ID     int64
	Secret []byte
}

// Value returns the cookie value exactly as CockroachDB encodes it: standard, padded base64 of
// the protobuf message {1: int64 id, 2: bytes secret}.
func (c Cookie) Value() string {
	buf := make([]byte, 0, 2+binary.MaxVarintLen64+2+len(c.Secret))
	if c.ID != 0 { // proto3 omits zero values
		buf = append(buf, 0x08)
		buf = binary.AppendUvarint(buf, uint64(c.ID))
	}
	if len(c.Secret) > 0 {
		buf = append(buf, 0x12)
		buf = binary.AppendUvarint(buf, uint64(len(c.Secret)))
		buf = append(buf, c.Secret...)
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// SetCookie returns the cookie as the auth-session CLI prints it and as a Set-Cookie header
// carries it: `session=<value>; Path=/; HttpOnly; Secure`.
func (c Cookie) SetCookie() string {
	return CookieName + "=" + c.Value() + "; Path=/; HttpOnly; Secure"
}

// String names the session without its secret, so that a cookie printed by mistake leaks nothing.
func (c Cookie) String() string {
	return "session " + strconv.FormatInt(c.ID, 10) + " (secret redacted)"
}

// LogValue keeps the secret out of structured logs.
func (c Cookie) LogValue() slog.Value { return slog.Int64Value(c.ID) }

// DecodeCookie reads a session cookie in any of the forms people paste: the bare value, a
// quoted value, `session=<value>`, or a whole `session=<value>; Path=/; HttpOnly` line. Anything
// else, including trailing bytes in the message, wrong field numbers or types, or a secret of
// the wrong length, is an error wrapping ErrMalformedCookie. It never panics.
func DecodeCookie(s string) (Cookie, error) {
	v := strings.TrimSpace(s)
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if name, val, ok := strings.Cut(v, "="); ok && name == CookieName {
		v = val
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return Cookie{}, malformed("empty")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil {
		return Cookie{}, malformed("not standard base64")
	}
	return decodeMessage(raw)
}

func malformed(why string) error { return fmt.Errorf("%w: %s", ErrMalformedCookie, why) }

// decodeMessage parses the protobuf message. Fields must be 1 (varint) and 2 (length-delimited),
// each at most once; proto3 allows them in either order.
func decodeMessage(b []byte) (Cookie, error) {
	var c Cookie
	var seenID, seenSecret bool
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return Cookie{}, malformed("bad field key")
		}
		b = b[n:]
		field, wire := key>>3, key&7
		switch {
		case field == 1 && wire == 0 && !seenID:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return Cookie{}, malformed("bad session ID")
			}
			c.ID, seenID, b = int64(v), true, b[n:]
		case field == 2 && wire == 2 && !seenSecret:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return Cookie{}, malformed("truncated secret")
			}
			c.Secret, seenSecret, b = bytes.Clone(b[n:n+int(l)]), true, b[n+int(l):]
		default:
			return Cookie{}, malformed(fmt.Sprintf("unexpected field %d (wire type %d)", field, wire))
		}
	}
	if !seenID {
		return Cookie{}, malformed("no session ID")
	}
	if c.ID <= 0 {
		return Cookie{}, malformed("session ID is not positive")
	}
	if len(c.Secret) != SecretLength {
		return Cookie{}, malformed(fmt.Sprintf("secret is %d bytes, want %d", len(c.Secret), SecretLength))
	}
	return c, nil
}

// DefaultTenant is CockroachDB's system tenant: the segment of an aggregated DB Console cookie
// that counts when a request names no tenant.
const DefaultTenant = "system"

// TenantSession picks the session of tenant from a `session` cookie value, as CockroachDB
// v23.1+ does. A value without a comma is a single session, whatever the tenant. A value with
// commas is the DB Console's aggregate of every tenant it signed in to,
// `<b64>,<tenant>[,<b64>,<tenant>...]` (the cookie writer quotes it; quotes are dropped here):
// the session just before the name tenant counts ("" means DefaultTenant). ok is false for an
// aggregate of an odd number of parts or without a segment for tenant. The session is not
// decoded: see DecodeCookie.
func TenantSession(value, tenant string) (session string, ok bool) {
	v := value
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if !strings.Contains(v, ",") {
		return value, true
	}
	if tenant == "" {
		tenant = DefaultTenant
	}
	parts := strings.Split(v, ",")
	if len(parts)%2 != 0 {
		return "", false
	}
	for i := 0; i < len(parts); i += 2 {
		if parts[i+1] == tenant {
			return parts[i], true
		}
	}
	return "", false
}
