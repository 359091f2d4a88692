// Package output prints SQL-style result sets the way the `cockroach` CLI
// does for `cockroach auth-session login|logout|list`.
//
// Every format of cockroach's --format flag is available: tsv, csv, table,
// records, ndjson, json, sql, html, rawhtml, unnumbered-html and raw. The byte
// layout of each one follows cockroach's pkg/cli/clisqlexec reporters and,
// for the table format, the cockroachdb/tablewriter fork that cockroach pins.
// The code is an independent re-implementation: none of it is copied.
//
// Cells are strings that the caller has already rendered (see Null and
// Timestamp). Before any format sees them, the Writer passes every cell
// through Escape, as cockroach does for query results in every format.
package output

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Align is a column's alignment in the table format.
type Align int

// Column alignments of the table format.
const (
	// AlignDefault right-aligns a cell whose (space-trimmed) text looks like
	// a decimal number and left-aligns any other cell.
	AlignDefault Align = iota
	// AlignLeft pads on the right.
	AlignLeft
	// AlignRight pads on the left.
	AlignRight
	// AlignCenter centres the text, the odd space going to the right.
	AlignCenter
)

// Column names a result column and how the table format aligns it.
type Column struct {
	Name  string
	Align Align
}

// Format is one of the --format values.
type Format string

// The supported --format values.
const (
	Table   Format = "table"
	TSV     Format = "tsv"
	CSV     Format = "csv"
	JSON    Format = "json"
	NDJSON  Format = "ndjson"
	Records Format = "records"
	// SQL prints a CREATE TABLE results statement and one INSERT per row.
	SQL Format = "sql"
	// HTML prints an HTML table with a row-number column and a row-count
	// footer, values HTML-escaped.
	HTML Format = "html"
	// RawHTML is HTML without escaping, row numbers or footer (cockroach keeps
	// it for generating its documentation and leaves it out of its help).
	RawHTML Format = "rawhtml"
	// UnnumberedHTML is HTML without row numbers or footer.
	UnnumberedHTML Format = "unnumbered-html"
	// Raw prints every value with its byte length, for exact parsing.
	Raw Format = "raw"
)

// Formats lists the accepted values in cockroach's order: tsv, csv, table,
// records, ndjson, json, sql, html, rawhtml, unnumbered-html, raw.
var Formats = []Format{TSV, CSV, Table, Records, NDJSON, JSON, SQL, HTML, RawHTML, UnnumberedHTML, Raw}

// FormatNames returns the format names that help texts show, joined by ", ",
// in the order of Formats. As in cockroach, rawhtml is accepted but not
// listed.
func FormatNames() string {
	names := make([]string, 0, len(Formats))
	for _, f := range Formats {
		if f != RawHTML {
			names = append(names, string(f))
		}
	}
	return strings.Join(names, ", ")
}

// ParseFormat returns the format named s, or an error listing the accepted
// names. Names are case-sensitive, as in cockroach.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("invalid table display format: %s (possible values: %s)", s, FormatNames())
}

// DefaultFormat is table when stdout is a terminal, tsv otherwise (as cockroach).
func DefaultFormat(isTerminal bool) Format {
	if isTerminal {
		return Table
	}
	return TSV
}

// Null is the rendered SQL NULL ("NULL"); cells are plain strings, so a value
// equal to Null prints as NULL.
const Null = "NULL"

// timestampLayout is cockroach's layout for TIMESTAMP (without time zone)
// values: microsecond precision, trailing zeros and a bare dot dropped.
const timestampLayout = "2006-01-02 15:04:05.999999"

// Timestamp renders a TIMESTAMP value as cockroach does:
// 2006-01-02 15:04:05.999999 in UTC.
func Timestamp(t time.Time) string {
	return t.UTC().Format(timestampLayout)
}

// AppendTimestamp appends Timestamp(t) to b.
func AppendTimestamp(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, timestampLayout)
}

// Escape renders a string cell the way cockroach's value formatter does for
// query results (printable Unicode shown, newlines and tabs kept): s is
// returned unchanged if it is valid UTF-8 and every rune is graphic
// (unicode.IsGraphic), a tab or a newline; otherwise it is quoted with Go's
// %+q (ASCII-only escapes) and the outer quotes are removed, e.g. "a\rb"
// becomes `a\rb` and "ü\x00" becomes `\u00fc\x00`.
//
// The Writer applies Escape to every cell, so callers pass raw strings.
func Escape(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, needsEscape) < 0 {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

func needsEscape(r rune) bool {
	return r != '\t' && r != '\n' && !unicode.IsGraphic(r)
}
