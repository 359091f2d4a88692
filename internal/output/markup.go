package output

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sessionconsole/console/sessionstore"
)

// The sql, html (with its rawhtml and unnumbered-html variants) and raw
// formats, as cockroach's sqlReporter, htmlReporter and rawReporter print
// them. Each has an opening written before the first row (or at Close when
// there are none), a text per row and a closing:
//
//	sql   CREATE TABLE results (\n  username STRING,\n  "session ID" STRING\n);\n\n
//	      INSERT INTO results VALUES ('web_user', '12');\n
//	      -- 1 row\n
//	html  <table>\n<thead><tr><th>row</th><th>username</th></tr></thead>\n<tbody>\n
//	      <tr><td>1</td><td>web_user</td></tr>\n
//	      </tbody>\n<tfoot><tr><td colspan=2>1 row</td></tr></tfoot></table>\n
//	raw   # 2 columns\n
//	      # row 1\n## 8\nweb_user\n## 2\n12\n
//	      # 1 row\n
//
// html escapes headers and values (html.EscapeString) and numbers the rows;
// unnumbered-html escapes but neither numbers the rows nor prints the footer;
// rawhtml does neither. Every html variant writes a newline in a header or
// value as <br/>. With no rows, html still closes with "</tbody>" although it
// never opened one, as cockroach does.

func (w *Writer) isHTML() bool {
	return w.format == HTML || w.format == RawHTML || w.format == UnnumberedHTML
}

// appendHeader appends the opening of the sql, html and raw formats.
func (w *Writer) appendHeader(dst []byte) []byte {
	switch w.format {
	case SQL:
		dst = append(dst, "CREATE TABLE results (\n"...)
		for i, name := range w.names {
			dst = append(dst, "  "...)
			dst = appendSQLIdent(dst, name)
			dst = append(dst, " STRING"...)
			if i < len(w.names)-1 {
				dst = append(dst, ',')
			}
			dst = append(dst, '\n')
		}
		dst = append(dst, ");\n\n"...)
	case HTML, RawHTML, UnnumberedHTML:
		dst = append(dst, "<table>\n<thead><tr>"...)
		if w.format == HTML {
			dst = append(dst, "<th>row</th>"...)
		}
		for _, name := range w.names {
			dst = append(dst, "<th>"...)
			dst = w.appendHTMLText(dst, name)
			dst = append(dst, "</th>"...)
		}
		dst = append(dst, "</tr></thead>\n"...)
	case Raw:
		dst = fmt.Appendf(dst, "# %d column%s\n", len(w.names), plural(len(w.names)))
	}
	return dst
}

// appendRow appends row number idx (0-based) of the sql, html and raw formats.
func (w *Writer) appendRow(dst []byte, idx int) []byte {
	switch w.format {
	case SQL:
		if len(w.cells) == 0 {
			return append(dst, "INSERT INTO results(rowid) VALUES (DEFAULT);\n"...)
		}
		dst = append(dst, "INSERT INTO results VALUES ("...)
		for i, c := range w.cells {
			dst = appendSQLString(dst, c)
			if i < len(w.cells)-1 {
				dst = append(dst, ", "...)
			}
		}
		dst = append(dst, ");\n"...)
	case HTML, RawHTML, UnnumberedHTML:
		dst = append(dst, "<tr>"...)
		if w.format == HTML {
			dst = append(dst, "<td>"...)
			dst = strconv.AppendInt(dst, int64(idx+1), 10)
			dst = append(dst, "</td>"...)
		}
		for _, c := range w.cells {
			dst = append(dst, "<td>"...)
			dst = w.appendHTMLText(dst, c)
			dst = append(dst, "</td>"...)
		}
		dst = append(dst, "</tr>\n"...)
	case Raw:
		dst = fmt.Appendf(dst, "# row %d\n", idx+1)
		for _, c := range w.cells {
			dst = fmt.Appendf(dst, "## %d\n%s\n", len(c), c)
		}
	}
	return dst
}

// appendFooter appends the closing of the sql, html and raw formats.
func (w *Writer) appendFooter(dst []byte) []byte {
	switch w.format {
	case SQL:
		dst = fmt.Appendf(dst, "-- %d row%s\n", w.nrows, plural(w.nrows))
	case HTML, RawHTML, UnnumberedHTML:
		dst = append(dst, "</tbody>\n"...)
		if w.format == HTML {
			dst = fmt.Appendf(dst, "<tfoot><tr><td colspan=%d>%d row%s</td></tr></tfoot>", len(w.names)+1, w.nrows, plural(w.nrows))
		}
		dst = append(dst, "</table>\n"...)
	case Raw:
		dst = fmt.Appendf(dst, "# %d row%s\n", w.nrows, plural(w.nrows))
	}
	return dst
}

func (w *Writer) appendHTMLText(dst []byte, s string) []byte {
	if w.format != RawHTML {
		s = html.EscapeString(s)
	}
	return append(dst, strings.ReplaceAll(s, "\n", "<br/>")...)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// appendSQLIdent appends a column name as cockroach's sql format writes it
// (lexbase.EncodeRestrictedSQLIdent): bare when it is a lower-case identifier
// that is neither a reserved keyword nor one that needs lookahead, otherwise
// in double quotes with inner double quotes doubled.
func appendSQLIdent(dst []byte, s string) []byte {
	if _, reserved := reservedKeywords[s]; !reserved && isBareIdentifier(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	dst = append(dst, strings.ReplaceAll(s, `"`, `""`)...)
	return append(dst, '"')
}

// isBareIdentifier: starts with a letter, '_' or a byte >= 0x80; continues with
// those, digits or '$'; no upper-case ASCII letter; and, if not ASCII, already
// in CockroachDB's normalized form (lower case, NFC).
func isBareIdentifier(s string) bool {
	if s == "" {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		start := c >= 'a' && c <= 'z' || c >= 0x80 || c == '_'
		if !start && (i == 0 || !(c >= '0' && c <= '9' || c == '$')) {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || sessionstore.NormalizeUsername(s) == s
}

// appendSQLString appends a string literal as cockroach's sql format writes
// it (lexbase.EncodeSQLStringWithFlags without flags): '...' when every byte
// is printable ASCII other than a quote or backslash, otherwise an escaped
// e'...' literal in which \b \f \n \r \t \\ and \' are escaped, other ASCII
// control bytes become \xNN, two-byte UTF-8 characters \uXXXX and longer
// ones \UXXXXXXXX (U+FFFD too, as its three bytes \xef\xbf\xbd).
func appendSQLString(dst []byte, s string) []byte {
	escaped := false
	start := 0
	for i, r := range s {
		if i < start {
			continue
		}
		if r >= 0x20 && r < 0x7f && r != '\\' && r != '\'' {
			continue
		}
		if !escaped {
			dst = append(dst, "e'"...)
			escaped = true
		}
		dst = append(dst, s[start:i]...)
		n := utf8.RuneLen(r)
		start = i + n
		switch {
		case r == utf8.RuneError:
			// Invalid UTF-8 never gets here (cells are escaped first); a real
			// U+FFFD is written as its bytes, as cockroach does.
			for j := i; j < i+n && j < len(s); j++ {
				dst = fmt.Appendf(dst, `\x%02x`, s[j])
			}
		case n == 1:
			switch r {
			case '\b':
				dst = append(dst, `\b`...)
			case '\f':
				dst = append(dst, `\f`...)
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			case '\t':
				dst = append(dst, `\t`...)
			case '\\':
				dst = append(dst, `\\`...)
			case '\'':
				dst = append(dst, `\'`...)
			default:
				dst = fmt.Appendf(dst, `\x%02x`, r)
			}
		case n == 2:
			dst = fmt.Appendf(dst, `\u%04X`, r)
		default:
			dst = fmt.Appendf(dst, `\U%08X`, r)
		}
	}
	if !escaped {
		dst = append(dst, '\'')
	}
	if start < len(s) {
		dst = append(dst, s[start:]...)
	}
	return append(dst, '\'')
}

// reservedKeywords are the words cockroach's sql format always quotes as
// column names: its reserved keywords and the keywords its parser needs one
// token of lookahead for (pkg/sql/lexbase reserved_keywords.go and
// predicates.go).
var reservedKeywords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, k := range strings.Fields(`
		all analyse analyze and annotate_type any array as asc asymmetric authorization
		between bigint bit boolean both box2d case cast char character characteristics check
		coalesce cockroachdb_extra_reserved_keyword collate collation column concurrently
		constraint create cross current_catalog current_date current_role current_schema
		current_time current_timestamp current_user dec decimal default deferrable desc
		distinct do else end except exists extract extract_duration false family fetch float
		for foreign from full geography geometry grant greatest group grouping having if
		iferror ifnull ilike in index initially inner int integer intersect interval into is
		iserror isnull join lateral leading least left like limit localtime localtimestamp
		natural none not nothing notnull null nullif numeric offset on only or order out
		outer overlaps overlay placing point polygon position precision primary real
		references returning right row select session_user similar smallint some string
		substring symmetric table then time timestamp timestamptz timetz to trailing treat
		trim true union unique user using values varbit varchar variadic virtual when where
		window with work
		of ordinality generated reset role tenant set`) {
		m[k] = struct{}{}
	}
	return m
}()
