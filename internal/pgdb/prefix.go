package pgdb

import "unicode/utf8"

// PrefixEnd returns the least string greater than every string starting with p (comparing
// bytes, which for UTF-8 is comparing code points), or false when there is none. A prefix
// filter is then the range col >= p AND col < PrefixEnd(p): an index serves it, and % or _
// are plain characters.
func PrefixEnd(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r < utf8.MaxRune {
			r++
			if r >= 0xD800 && r <= 0xDFFF { // surrogates are not valid in UTF-8
				r = 0xE000
			}
			return p + string(r), true
		}
	}
	return "", false
}
