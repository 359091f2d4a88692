package sessionstore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The cookies printed on the reference page of `cockroach auth-session` and the session IDs it
// lists beside them.
func TestReferenceCookies(t *testing.T) {
	cases := []struct {
		cookie string
		id     int64
	}{
		{"session=CIGAtrWQq7rxChIQTXxYNNQxAYjyLAjHWxgUMQ==; Path=/; HttpOnly; Secure", 784445853689282561},
		{"session=CIGA6t2q0LrxChIQV8QCF3vuYSasR7h4LPSfmg==; Path=/; HttpOnly; Secure", 784447132063662081},
		{"session=CIGA8I7/irvxChIQDtZQsMtn3AqpgDko6bldSw==; Path=/; HttpOnly; Secure", 784449147579924481},
	}
	for _, c := range cases {
		got, err := DecodeCookie(c.cookie)
		if err != nil {
			t.Fatalf("DecodeCookie(%q): %v", c.cookie, err)
		}
		if got.ID != c.id || len(got.Secret) != SecretLength {
			t.Errorf("DecodeCookie(%q) = id %d, %d-byte secret; want id %d", c.cookie, got.ID, len(got.Secret), c.id)
		}
		// Re-encoding gives back the same text.
		if got.SetCookie() != c.cookie {
			t.Errorf("re-encoded %q, want %q", got.SetCookie(), c.cookie)
		}
	}
}

func TestDecodeCookieForms(t *testing.T) {
	c := Cookie{ID: 784445853689282561, Secret: bytes.Repeat([]byte{7}, SecretLength)}
	v := c.Value()
	for _, in := range []string{
		v,
		" " + v + "\n",
		`"` + v + `"`,
		"session=" + v,
		`session="` + v + `"`,
		"session=" + v + "; Path=/; HttpOnly",
		c.SetCookie(),
	} {
		got, err := DecodeCookie(in)
		if err != nil || got.ID != c.ID || !bytes.Equal(got.Secret, c.Secret) {
			t.Errorf("DecodeCookie(%q) = %+v, %v", in, got, err)
		}
	}
}

func TestDecodeCookieMalformed(t *testing.T) {
	good := Cookie{ID: 784445853689282561, Secret: bytes.Repeat([]byte{1}, SecretLength)}
	raw, _ := base64.StdEncoding.DecodeString(good.Value())
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	field := func(key byte, rest ...byte) []byte { return append([]byte{key}, rest...) }
	cases := map[string]string{
		"empty":                  "",
		"only name":              "session=",
		"other cookie name":      "tenant=" + good.Value(),
		"not base64":             "!!!notbase64!!!",
		"url-safe alphabet":      strings.NewReplacer("+", "-", "/", "_").Replace(enc(append(raw[:len(raw):len(raw)], 0xfb, 0xff))),
		"unpadded":               strings.TrimRight(good.Value(), "="),
		"truncated base64":       good.Value()[:len(good.Value())-3],
		"truncated message":      enc(raw[:len(raw)-4]),
		"trailing bytes":         enc(append(bytes.Clone(raw), 0x00)),
		"trailing field":         enc(append(bytes.Clone(raw), 0x18, 0x01)),
		"wrong field number":     enc(append(field(0x18, raw[1:10]...), raw[10:]...)),
		"id as bytes":            enc(append([]byte{0x0a, 0x01, 0x01}, raw[10:]...)),
		"secret as varint":       enc(append(bytes.Clone(raw[:10]), 0x10, 0x05)),
		"duplicate id":           enc(append(bytes.Clone(raw[:10]), raw...)),
		"no id":                  enc(raw[10:]),
		"no secret":              enc(raw[:10]),
		"short secret":           enc(append(bytes.Clone(raw[:10]), 0x12, 0x04, 1, 2, 3, 4)),
		"long secret":            enc(append(append(bytes.Clone(raw[:10]), 0x12, 0x11), bytes.Repeat([]byte{1}, 17)...)),
		"huge length":            enc(append(bytes.Clone(raw[:10]), 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f)),
		"overlong varint":        enc(append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 11)...)),
		"zero id":                Cookie{ID: 0, Secret: good.Secret}.Value(),
		"negative id":            Cookie{ID: -5, Secret: good.Secret}.Value(),
		"multi-tenant aggregate": `"` + good.Value() + `,system"`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeCookie(in)
			if !errors.Is(err, ErrMalformedCookie) {
				t.Errorf("DecodeCookie(%q) = %+v, %v; want ErrMalformedCookie", in, got, err)
			}
		})
	}
}

// Round trip: every positive ID and 16-byte secret encodes and decodes to itself.
func TestCookieRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := []int64{1, 127, 128, 1<<31 - 1, 1 << 62, 1<<63 - 1, 784445853689282561}
	for i := 0; i < 5000; i++ {
		ids = append(ids, r.Int64N(1<<63-1)+1)
	}
	for _, id := range ids {
		c := Cookie{ID: id, Secret: make([]byte, SecretLength)}
		for j := range c.Secret {
			c.Secret[j] = byte(r.UintN(256))
		}
		got, err := DecodeCookie(c.SetCookie())
		if err != nil || got.ID != c.ID || !bytes.Equal(got.Secret, c.Secret) {
			t.Fatalf("round trip of %d: %+v, %v", id, got, err)
		}
	}
}

func TestCookieNeverPrintsSecret(t *testing.T) {
	c := Cookie{ID: 42, Secret: []byte("0123456789abcdef")}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %s", c, c, c), c.LogValue().String()} {
		if strings.Contains(s, c.Value()) || strings.Contains(s, "0123456789abcdef") {
			t.Errorf("%q shows the secret", s)
		}
	}
}

// FuzzDecodeCookie: malformed input is an error, never a panic; whatever decodes re-encodes to
// a cookie that decodes the same. The seed corpus runs in every `go test`.
func FuzzDecodeCookie(f *testing.F) {
	for _, s := range []string{
		"CIGAtrWQq7rxChIQTXxYNNQxAYjyLAjHWxgUMQ==",
		"session=CIGA6t2q0LrxChIQV8QCF3vuYSasR7h4LPSfmg==; Path=/; HttpOnly; Secure",
		`"CIGA8I7/irvxChIQDtZQsMtn3AqpgDko6bldSw=="`,
		"", "session=", "AAAA", "CP////////////8BEhA=", "EhAAAAAAAAAAAAAAAAAAAAAA", "////", "CIGAtrWQq7rxChIQTXxYNNQxAYjyLAjHWxgUMQ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCookie(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedCookie) {
				t.Fatalf("error %v does not wrap ErrMalformedCookie", err)
			}
			return
		}
		again, err := DecodeCookie(c.Value())
		if err != nil || again.ID != c.ID || !bytes.Equal(again.Secret, c.Secret) {
			t.Fatalf("re-decode of %q: %+v %v", s, again, err)
		}
	})
}

func TestNormalizeUsername(t *testing.T) {
	for in, want := range map[string]string{
		"Web_User":   "web_user",
		"ROOT":       "root",
		"İstanbul":   "istanbul",
		"DİYARBAKIR": "diyarbakir",
		"ıi":         "ii",
		"Ünïcødé":    "ünïcødé",
		"e\u0301":    "\u00e9", // NFC
		"ΣΊΣΥΦΟΣ":    "σίσυφοσ",
	} {
		if got := NormalizeUsername(in); got != want {
			t.Errorf("NormalizeUsername(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	good := map[string]time.Duration{"1h": time.Hour, "4h30m": 4*time.Hour + 30*time.Minute, "90m": 90 * time.Minute,
		"1h0m0s": time.Hour, "45s": 45 * time.Second, "1.5h": 90 * time.Minute, ".5h": 30 * time.Minute, "+2h": 2 * time.Hour}
	for in, want := range good {
		if got, err := ParseExpiry(in); err != nil || got != want {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, reason := range map[string]string{
		"": "use hours", "-1h": "must be positive", "0s": "must be positive", "1d": "use hours", "7d": "use hours",
		"abc": "use hours", "500ms": "use hours", "1h 30m": "use hours", " 15m": "use hours", "1H": "use hours",
		"h": "use hours", "1e3h": "use hours", "0": "use hours", "99999999999999h": "far too long",
	} {
		_, err := ParseExpiry(in)
		var ee *ExpiryError
		if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &ee) || ee.Input != in || !strings.Contains(ee.Reason, reason) {
			t.Errorf("ParseExpiry(%q) = %v, want an ExpiryError about %q", in, err, reason)
		}
	}
}

// The web's syntax is the CLI's with whole days in front; a sign only at the very front.
func TestParseWebExpiry(t *testing.T) {
	good := map[string]time.Duration{"7d": 7 * Day, "1d12h": 36 * time.Hour, "+7d": 7 * Day, "0d90m": 90 * time.Minute, "1d0s": Day,
		"31d": 31 * Day, "1h": time.Hour, "+2h": 2 * time.Hour, "4h30m": 4*time.Hour + 30*time.Minute, "1d1.5h": 25*time.Hour + 30*time.Minute}
	for in, want := range good {
		if got, err := ParseWebExpiry(in); err != nil || got != want {
			t.Errorf("ParseWebExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, reason := range map[string]string{
		"": "use days", "-7d": "must be positive", "-1h": "must be positive", "0d": "must be positive", "0s": "must be positive",
		"1.5d": "use days", "7dd": "use days", "d": "use days", "1d+2h": "use days", "1d-2h": "use days", "+-7d": "use days",
		"7D": "use days", " 7d": "use days", "7d ": "use days", "1w": "use days", "500ms": "use days", "123456d": "use days",
		"99999d9999999h": "far too long",
	} {
		_, err := ParseWebExpiry(in)
		var ee *ExpiryError
		if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &ee) || ee.Input != in || !strings.Contains(ee.Reason, reason) {
			t.Errorf("ParseWebExpiry(%q) = %v, want an ExpiryError about %q", in, err, reason)
		}
	}
	for d, want := range map[time.Duration]string{31 * Day: "31d", 366 * Day: "366d", 36 * time.Hour: "36h", 90 * time.Minute: "1h30m"} {
		if got := FormatWebDuration(d); got != want {
			t.Errorf("FormatWebDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
