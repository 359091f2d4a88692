package output

import (
	"unicode"
	"unicode/utf8"
)

// appendCSVRecord appends one record, newline-terminated, quoting fields the
// way cockroach's util/encoding/csv writer does (used for both csv and tsv):
//
//   - a field is quoted if it contains the delimiter, a double quote, CR or
//     LF, if its first rune is a Unicode space, or if it is exactly `\.`
//     (the PostgreSQL COPY terminator);
//   - inside quotes a double quote is doubled; CR and LF are kept as is;
//   - the empty field is not quoted; records end with "\n" (no CRLF);
//   - bytes that are not valid UTF-8 are written as U+FFFD.
func appendCSVRecord(dst []byte, fields []string, comma rune) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = utf8.AppendRune(dst, comma)
		}
		dst = appendCSVField(dst, f, comma)
	}
	return append(dst, '\n')
}

func appendCSVField(dst []byte, field string, comma rune) []byte {
	quote := field == `\.`
	for i, r := range field {
		switch {
		case r == '"' || r == comma || r == '\r' || r == '\n':
			quote = true
		case i == 0 && unicode.IsSpace(r):
			quote = true
		}
	}
	if quote {
		dst = append(dst, '"')
	}
	for _, r := range field {
		if r == '"' {
			dst = append(dst, '"', '"')
			continue
		}
		dst = utf8.AppendRune(dst, r)
	}
	if quote {
		dst = append(dst, '"')
	}
	return dst
}
