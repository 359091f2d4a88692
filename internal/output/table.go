package output

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/mattn/go-runewidth"
)

// The table format reproduces cockroach's ASCII table reporter with its
// default border mode 0, which drives the cockroachdb/tablewriter fork with
// no header auto-formatting, no wrapping, no outside borders, no row lines
// and trailing whitespace trimmed on every line:
//
//	  username |     session ID     |          revoked
//	-----------+--------------------+-----------------------------
//	  web_user | 784445853689282561 | 2022-08-02 18:24:50.819614
//	(1 row)
//
//   - Before anything else each header and cell goes through a text/tabwriter
//     with minimum cell width 4, padding 1 and space padding, which turns
//     tabs into spaces ("a\tb" -> "a   b", "abcdef\tx" -> "abcdef x") and
//     aligns tab-separated parts across the lines of a multi-line value.
//   - A cell is split into lines at "\n". A column is as wide as its widest
//     header or cell line, measured with go-runewidth after removing ANSI
//     SGR/EL escape sequences.
//   - Header and data lines: a leading space, then per column " text " and a
//     separator: "|" between columns and " " after the last; the whole line
//     is then right-trimmed of Unicode white space. Headers are centred
//     (floor(gap/2) spaces on the left). A row's shorter cells are filled
//     with "  " (two spaces) lines, aligned like text.
//   - Rule line: "-", then per column width+2 dashes and "+" between
//     columns ("-" after the last).
//   - Alignment per column: left, right, centre, or default (right-aligned
//     if the space-trimmed line matches decimalPattern, else left).

// decimalPattern is the tablewriter's test for numbers under default
// alignment: optional minus, digits with optional thousands commas, optional
// fraction. (Its companion "percent" pattern can never match, so it is left
// out.)
var decimalPattern = regexp.MustCompile(`^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$`)

// ansiPattern matches the escape sequences that do not count towards a
// cell's display width.
var ansiPattern = regexp.MustCompile("\x1b\\[(?:[0-9]{1,3}(?:;[0-9]{1,3})*)?[m|K]")

// widthCondition measures display widths. It is go-runewidth's default
// condition, so, as in cockroach, East Asian ambiguous-width runes count as
// 2 cells under a CJK locale (LANG/LC_ALL) or RUNEWIDTH_EASTASIAN=1.
var widthCondition = runewidth.DefaultCondition

func displayWidth(s string) int {
	if strings.IndexByte(s, '\x1b') >= 0 {
		s = ansiPattern.ReplaceAllLiteralString(s, "")
	}
	return widthCondition.StringWidth(s)
}

// expandTabs runs s through a tabwriter configured as cockroach's table
// reporter does (minwidth 4, tabwidth 0, padding 1, padchar ' ', no flags).
// Strings without any byte the tabwriter treats specially come back as is.
func expandTabs(s string) string {
	special := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\t', '\v', '\f', tabwriter.Escape:
			special = true
		}
	}
	if !special {
		return s
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 4, 0, 1, ' ', 0)
	_, _ = fmt.Fprint(tw, s)
	_ = tw.Flush()
	return b.String()
}

type tableBuffer struct {
	align  []Align
	header [][]string   // per column: lines
	rows   [][][]string // per row, per column: lines
	widths []int
}

func newTableBuffer(cols []Column) *tableBuffer {
	t := &tableBuffer{
		align:  make([]Align, len(cols)),
		header: make([][]string, len(cols)),
		widths: make([]int, len(cols)),
	}
	for i, c := range cols {
		t.align[i] = c.Align
		t.header[i] = t.lines(i, c.Name)
	}
	return t
}

// lines splits a header or cell of column col into its display lines and
// widens the column to fit them.
func (t *tableBuffer) lines(col int, s string) []string {
	ls := strings.Split(expandTabs(s), "\n")
	for _, l := range ls {
		if w := displayWidth(l); w > t.widths[col] {
			t.widths[col] = w
		}
	}
	return ls
}

func (t *tableBuffer) add(cells []string) {
	row := make([][]string, len(cells))
	for i, c := range cells {
		row[i] = t.lines(i, c)
	}
	t.rows = append(t.rows, row)
}

func (t *tableBuffer) render(bw *bufio.Writer) {
	var line []byte

	// Header.
	last := len(t.widths) - 1
	height := 0
	for _, h := range t.header {
		height = max(height, len(h))
	}
	for x := 0; x < height; x++ {
		line = append(line[:0], ' ')
		for y, h := range t.header {
			text := ""
			if x < len(h) {
				text = h[x]
			}
			line = append(line, ' ')
			line = appendAligned(line, text, t.widths[y], AlignCenter)
			line = append(line, ' ')
			if y == last {
				line = append(line, ' ')
			} else {
				line = append(line, '|')
			}
		}
		writeTrimmed(bw, line)
	}

	// Rule.
	line = append(line[:0], '-')
	for y, w := range t.widths {
		for i := 0; i < w+2; i++ {
			line = append(line, '-')
		}
		if y == last {
			line = append(line, '-')
		} else {
			line = append(line, '+')
		}
	}
	line = append(line, '\n')
	bw.Write(line)

	// Rows.
	for _, row := range t.rows {
		height := 0
		for _, c := range row {
			height = max(height, len(c))
		}
		for x := 0; x < height; x++ {
			line = line[:0]
			for y, c := range row {
				text := "  " // the tablewriter's filler for a shorter cell
				if x < len(c) {
					text = c[x]
				}
				if y == 0 {
					line = append(line, ' ')
				} else {
					line = append(line, '|')
				}
				line = append(line, ' ')
				line = appendAligned(line, text, t.widths[y], t.align[y])
				line = append(line, ' ')
			}
			line = append(line, ' ')
			writeTrimmed(bw, line)
		}
	}
}

// appendAligned appends s padded with spaces to width display cells.
func appendAligned(dst []byte, s string, width int, a Align) []byte {
	gap := width - displayWidth(s)
	if gap <= 0 {
		return append(dst, s...)
	}
	left := 0
	switch a {
	case AlignLeft:
	case AlignRight:
		left = gap
	case AlignCenter:
		left = gap / 2
	default:
		if decimalPattern.MatchString(strings.TrimSpace(s)) {
			left = gap
		}
	}
	dst = appendSpaces(dst, left)
	dst = append(dst, s...)
	return appendSpaces(dst, gap-left)
}

func appendSpaces(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, ' ')
	}
	return dst
}

func writeTrimmed(bw *bufio.Writer, line []byte) {
	bw.Write(bytes.TrimRightFunc(line, unicode.IsSpace))
	bw.WriteByte('\n')
}
