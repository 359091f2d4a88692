package output

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrClosed is returned by Row after Close.
var ErrClosed = errors.New("output: writer is closed")

// Writer streams rows in one format. Table buffers every row until Close
// (column widths depend on all of them); csv, tsv, json, ndjson and records
// write each row as it comes, in constant memory.
//
// What is written matches cockroach's reporters byte for byte:
//   - table: header line(s), rule line, rows, then "(N rows)" / "(1 row)";
//     with no columns, "--" then the row count.
//   - tsv / csv: header row then one record per row (cockroach's
//     util/encoding/csv quoting), no footer. No columns: "# no columns".
//   - json: "[", each row as "\n  {...}" separated by ",", then "\n]\n".
//     Objects are encoding/json maps: keys sorted, values strings.
//   - ndjson: one object per line; zero rows print a single "\n".
//   - records: "-[ RECORD n ]" then "label | value" lines per row; zero rows
//     print nothing.
//   - sql: "CREATE TABLE results (...);", an INSERT per row, "-- N rows".
//   - html, rawhtml, unnumbered-html: a <table> with a <thead>, a <tbody>
//     of rows and (html only) a row-number column and a <tfoot> row count.
//   - raw: "# N columns", then "# row i" and "## <bytes>" + value lines,
//     then "# N rows".
//
// CloseTag ends a statement that returned no rows the way cockroach's no-rows
// rule does (logout's "UPDATE 0"): the format's header, the tag, its closing.
//
// The header (or json "[") is written by the first Row or by Close, so a
// Writer that is created and then abandoned writes nothing.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	out    io.Writer
	format Format
	cols   []Column
	names  []string

	nrows   int
	started bool // header or opening bracket written
	closed  bool
	err     error // first write error; sticky

	cells []string // scratch: the escaped values of the current row
	buf   []byte   // scratch: one row's bytes for the streaming formats

	tbl *tableBuffer  // Table
	rec *recordLabels // Records
	obj map[string]string
}

// NewWriter returns a Writer that prints rows with the given columns to w in
// format f. It writes nothing yet. It fails for a nil w or an unknown format.
// cols may be empty (cockroach has an output for that case too).
func NewWriter(w io.Writer, f Format, cols []Column) (*Writer, error) {
	if w == nil {
		return nil, errors.New("output: nil io.Writer")
	}
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, err
	}
	wr := &Writer{
		out:    w,
		format: f,
		cols:   append([]Column(nil), cols...),
		names:  make([]string, len(cols)),
		cells:  make([]string, len(cols)),
	}
	for i, c := range cols {
		wr.names[i] = c.Name
	}
	switch f {
	case Table:
		if len(cols) > 0 {
			wr.tbl = newTableBuffer(wr.cols)
		}
	case Records:
		wr.rec = newRecordLabels(wr.names)
	case JSON, NDJSON:
		wr.obj = make(map[string]string, len(cols))
	}
	return wr, nil
}

// Format returns the writer's format.
func (w *Writer) Format() Format { return w.format }

// Rows returns the number of rows accepted so far.
func (w *Writer) Rows() int { return w.nrows }

// Row adds one row. values are the rendered cells, one per column, in column
// order (use Null for SQL NULL and Timestamp for TIMESTAMP values); each is
// passed through Escape. A row with the wrong number of values is an error
// and writes nothing. After a write error every call returns that error.
func (w *Writer) Row(values ...string) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if len(values) != len(w.cols) {
		return fmt.Errorf("output: row has %d values, want %d (one per column)", len(values), len(w.cols))
	}
	for i, v := range values {
		w.cells[i] = Escape(v)
	}
	idx := w.nrows
	w.nrows++
	switch w.format {
	case Table:
		if w.tbl != nil {
			w.tbl.add(w.cells)
		}
		return nil
	case TSV, CSV:
		w.buf = w.buf[:0]
		if !w.started {
			w.started = true
			w.buf = w.appendCSVHeader(w.buf)
		}
		if len(w.cells) == 0 {
			w.buf = appendCSVRecord(w.buf, []string{"# empty"}, w.comma())
		} else {
			w.buf = appendCSVRecord(w.buf, w.cells, w.comma())
		}
		return w.write(w.buf)
	case JSON, NDJSON:
		return w.jsonRow(idx)
	case Records:
		w.buf = w.rec.appendRecord(w.buf[:0], idx, w.cells)
		return w.write(w.buf)
	case SQL, HTML, RawHTML, UnnumberedHTML, Raw:
		w.buf = w.buf[:0]
		if !w.started {
			w.started = true
			w.buf = w.appendHeader(w.buf)
			if w.isHTML() {
				w.buf = append(w.buf, "<tbody>\n"...)
			}
		}
		w.buf = w.appendRow(w.buf, idx)
		return w.write(w.buf)
	}
	return nil
}

// Close writes whatever the format still owes (for table: everything, then
// the "(N rows)" footer) and reports the first write error. It does not close
// the underlying io.Writer. Calling Close again returns the same error.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	switch w.format {
	case Table:
		bw := bufio.NewWriter(w.out)
		if w.tbl != nil {
			w.tbl.render(bw)
		} else {
			// No columns: a plain delimiter, like psql.
			bw.WriteString("--\n")
		}
		bw.WriteString(rowCount(w.nrows))
		w.setErr(bw.Flush())
	case TSV, CSV:
		if !w.started {
			w.started = true
			w.write(w.appendCSVHeader(nil))
		}
	case JSON:
		var b []byte
		if !w.started {
			w.started = true
			b = append(b, '[')
		}
		b = append(b, "\n]\n"...)
		w.write(b)
	case NDJSON:
		w.write([]byte{'\n'})
	case Records:
		if len(w.cols) == 0 {
			w.write([]byte(rowCount(w.nrows)))
		}
	case SQL, HTML, RawHTML, UnnumberedHTML, Raw:
		var b []byte
		if !w.started {
			w.started = true
			b = w.appendHeader(b)
		}
		w.write(w.appendFooter(b))
	}
	return w.err
}

// CloseTag ends the output of a statement that is not a query, such as
// logout's UPDATE, with its command tag (e.g. "UPDATE 0"), as cockroach's
// no-rows rule does when such a statement returns no rows: the format's
// opening (the column header where the format prints one when it starts),
// the tag on a line of its own, then the format's no-rows closing. In table
// and records that is the tag alone; csv and tsv print the tag alone too
// (cockroach's CSV writer still holds the header in its buffer when the
// process ends); json prints "[", the tag, "\n]\n" (not valid JSON, as in
// cockroach); html closes with "</table>". With rows, CloseTag is Close.
func (w *Writer) CloseTag(tag string) error {
	if w.nrows > 0 || w.closed || w.err != nil {
		return w.Close()
	}
	w.closed = true
	var b []byte
	switch w.format {
	case JSON:
		b = append(b, '[')
	case SQL, HTML, RawHTML, UnnumberedHTML, Raw:
		b = w.appendHeader(b)
	}
	b = append(b, tag...)
	b = append(b, '\n')
	switch w.format {
	case JSON:
		b = append(b, "\n]\n"...)
	case NDJSON:
		b = append(b, '\n')
	case HTML, RawHTML, UnnumberedHTML:
		b = append(b, "</table>\n"...)
	}
	w.write(b)
	return w.err
}

func (w *Writer) comma() rune {
	if w.format == TSV {
		return '\t'
	}
	return ','
}

func (w *Writer) appendCSVHeader(dst []byte) []byte {
	if len(w.names) == 0 {
		return appendCSVRecord(dst, []string{"# no columns"}, w.comma())
	}
	return appendCSVRecord(dst, w.names, w.comma())
}

// jsonRow writes row number idx (0-based) of the json or ndjson format.
func (w *Writer) jsonRow(idx int) error {
	for i, name := range w.names {
		w.obj[name] = w.cells[i]
	}
	obj, err := json.Marshal(w.obj)
	if err != nil {
		return err // cannot happen for a map[string]string
	}
	w.buf = w.buf[:0]
	if w.format == JSON {
		if !w.started {
			w.started = true
			w.buf = append(w.buf, '[')
		}
		if idx == 0 {
			w.buf = append(w.buf, "\n  "...)
		} else {
			w.buf = append(w.buf, ",\n  "...)
		}
	} else if idx > 0 {
		w.buf = append(w.buf, '\n')
	}
	w.buf = append(w.buf, obj...)
	return w.write(w.buf)
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(b) == 0 {
		return nil
	}
	n, err := w.out.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	w.setErr(err)
	return w.err
}

func (w *Writer) setErr(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

// rowCount is cockroach's footer: "(1 row)" or "(N rows)", newline-terminated.
func rowCount(n int) string {
	if n == 1 {
		return "(1 row)\n"
	}
	return fmt.Sprintf("(%d rows)\n", n)
}

// recordLabels holds the records format's column labels. cockroach pads
// labels to the widest one, counted in runes; a label with newlines prints
// its first line as the label and the other lines after each value line.
type recordLabels struct {
	first []string   // first line of each label
	rest  [][]string // remaining lines of each label
	width int        // widest label line, in runes
}

func newRecordLabels(names []string) *recordLabels {
	r := &recordLabels{first: make([]string, len(names)), rest: make([][]string, len(names))}
	for i, name := range names {
		parts := strings.Split(name, "\n")
		for _, p := range parts {
			if n := utf8.RuneCountInString(p); n > r.width {
				r.width = n
			}
		}
		r.first[i] = parts[0]
		r.rest[i] = parts[1:]
	}
	return r
}

// appendRecord appends row idx (0-based) in the records format.
func (r *recordLabels) appendRecord(dst []byte, idx int, cells []string) []byte {
	if len(r.first) == 0 {
		// Nothing per row; Close prints the row count.
		return dst
	}
	dst = fmt.Appendf(dst, "-[ RECORD %d ]\n", idx+1)
	for j, cell := range cells {
		cont := byte(' ')
		if len(r.rest[j]) > 0 {
			cont = '+'
		}
		lines := strings.Split(cell, "\n")
		for l, line := range lines {
			label := r.first[j]
			if l > 0 {
				label = ""
			}
			dst = appendPaddedRunes(dst, label, r.width)
			dst = append(dst, cont)
			dst = append(dst, "| "...)
			dst = append(dst, line...)
			if l < len(lines)-1 {
				dst = append(dst, '+')
			}
			dst = append(dst, '\n')
			for k, more := range r.rest[j] {
				c := byte('+')
				if k == len(r.rest[j])-1 {
					c = ' '
				}
				dst = appendPaddedRunes(dst, more, r.width)
				dst = append(dst, c, '|', '\n')
			}
		}
	}
	return dst
}

// appendPaddedRunes appends s left-justified in width runes (like %-*s).
func appendPaddedRunes(dst []byte, s string, width int) []byte {
	dst = append(dst, s...)
	for n := utf8.RuneCountInString(s); n < width; n++ {
		dst = append(dst, ' ')
	}
	return dst
}
