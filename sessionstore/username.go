package sessionstore

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NormalizeUsername normalizes a username as CockroachDB normalizes SQL identifiers given by a
// user: lower-cased with Unicode case mapping (İ and ı both become i), then NFC when the result
// is not ASCII. The CockroachDB dialect stores and matches usernames in this form.
func NormalizeUsername(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	lower := strings.Map(func(r rune) rune {
		if r == 'İ' || r == 'ı' {
			return 'i'
		}
		return unicode.ToLower(r)
	}, s)
	return norm.NFC.String(lower)
}

// CheckUsername reports whether s can be a username at all: what Issue, RevokeUser and
// EndUserSessions refuse with ErrInvalidInput (empty, not UTF-8, control characters, too long).
func CheckUsername(s string) error { return checkUsername(s) }

// checkUsername rejects what can never be a username: empty, not UTF-8, control characters.
func checkUsername(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: username is empty", ErrInvalidInput)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: username is not valid UTF-8", ErrInvalidInput)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: username contains control characters", ErrInvalidInput)
	case len(s) > maxUsernameBytes:
		return fmt.Errorf("%w: username is longer than %d bytes", ErrInvalidInput, maxUsernameBytes)
	}
	return nil
}

// maxUsernameBytes bounds input; no database here allows longer role names.
const maxUsernameBytes = 256
