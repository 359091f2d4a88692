package templates

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ShowName returns a username as the console displays it, so that two different names never
// look alike and no name can hide or reorder text around it: every character that is
// invisible, looks like a plain space, or steers text direction is written as <U+XXXX>
// (control and format characters, Unicode Cc and Cf, which include the bidirectional
// controls; line and paragraph separators, Zl and Zp; spaces other than U+0020, Zs; private
// use, Co; default-ignorable characters and variation selectors), a space at either end as
// <U+0020>, and a byte that is not UTF-8 as <0xFF>. Every other character is itself. Use it
// wherever a username is shown (text, title, aria-label), never where one is sent back (form
// values, URLs, data- attributes): those keep the exact name.
func ShowName(s string) string {
	if !needsShowing(s) {
		return s
	}
	return string(AppendShowName(make([]byte, 0, len(s)+16), s))
}

// AppendShowName appends ShowName(s) to b.
func AppendShowName(b []byte, s string) []byte {
	if !needsShowing(s) {
		return append(b, s...)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "<0x"...)
			b = appendHex(b, uint32(s[i]), 2)
			b = append(b, '>')
		case hidden(r) || r == ' ' && (i == 0 || i+size == len(s)):
			b = append(b, "<U+"...)
			b = appendHex(b, uint32(r), 4)
			b = append(b, '>')
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// needsShowing reports whether s has anything ShowName rewrites (printable ASCII with no space
// at the ends has not: the common case costs one pass over the bytes).
func needsShowing(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			for _, r := range s[i:] {
				if r == utf8.RuneError || hidden(r) {
					return true
				}
			}
			return false
		}
	}
	return false
}

// hidden reports whether r is shown as <U+XXXX> wherever it stands.
func hidden(r rune) bool {
	if r < 0x7f {
		return r < 0x20
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Zs, unicode.Co,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

func appendHex(b []byte, v uint32, width int) []byte {
	h := strconv.FormatUint(uint64(v), 16)
	for i := len(h); i < width; i++ {
		b = append(b, '0')
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'a' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
