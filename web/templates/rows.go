package templates

import (
	"context"
	"io"
	"math"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/a-h/templ"
)

// sessionRows renders the rows of the sessions table. It is written by hand, appending to one
// buffer without intermediate strings, because it is the hot part of the console's busiest
// response (a page is 50 to 500 of these); the markup is what a templ component would give.
func sessionRows(t SessionsTable) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		bp := rowBufs.Get().(*[]byte)
		b := (*bp)[:0]
		returnQuery := appendEscaped(nil, t.ReturnQuery) // the same in every row
		for _, r := range t.Rows {
			b = appendRow(b, &t, &r, returnQuery)
		}
		_, err := w.Write(b)
		if cap(b) <= 1<<20 {
			*bp = b
			rowBufs.Put(bp)
		}
		return err
	})
}

var rowBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// appendRow appends the row of r; returnQuery is t.ReturnQuery, escaped.
func appendRow(b []byte, t *SessionsTable, r *SessionRow, returnQuery []byte) []byte {
	var idBuf [20]byte
	id := strconv.AppendInt(idBuf[:0], r.ID, 10)
	status := r.Status(t.Now)
	b = append(b, `<tr data-testid="session-row" data-session-id="`...)
	b = append(b, id...)
	b = append(b, `" data-username="`...)
	b = appendEscaped(b, r.Username)
	b = append(b, `" data-status="`...)
	b = append(b, status...)
	if r.PurgedAt != nil {
		b = append(b, `" data-purged="true`...)
	}
	b = append(b, `">`...)
	if t.Bulk { // the bulk form's checkbox; a revoked session has nothing to select
		b = append(b, `<td class="sel">`...)
		if status != "revoked" {
			b = append(b, `<input type="checkbox" name="id" value="`...)
			b = append(b, id...)
			b = append(b, `" form="bulk-form" aria-label="Select session `...)
			b = append(b, id...)
			b = append(b, `" data-testid="row-select"/><input type="hidden" name="page_id" value="`...)
			b = append(b, id...)
			b = append(b, `" form="bulk-form"/>`...)
		}
		b = append(b, `</td>`...)
	}
	b = append(b, `<td data-label="Username"><a href="/users/`...)
	b = appendEscaped(b, url.PathEscape(r.Username))
	b = append(b, `" class="uname" data-testid="row-user">`...)
	b = appendShown(b, r.Username)
	b = append(b, `</a></td><td data-label="Session ID" class="num"><a href="/sessions/`...)
	b = append(b, id...)
	b = append(b, `" data-testid="row-session"><code>`...)
	b = append(b, id...)
	b = append(b, `</code></a></td><td data-label="Created">`...)
	b = appendTime(b, r.CreatedAt, t.Now)
	b = append(b, `</td><td data-label="Expires">`...)
	b = appendTime(b, r.ExpiresAt, t.Now)
	b = append(b, `</td><td data-label="Revoked">`...)
	if r.RevokedAt == nil {
		b = append(b, notRevoked...)
	} else {
		b = appendTime(b, *r.RevokedAt, t.Now)
	}
	b = append(b, `</td><td data-label="Last used">`...)
	b = appendTime(b, r.LastUsedAt, t.Now)
	b = append(b, `</td><td data-label="Status"><span class="status `...)
	b = append(b, status...)
	b = append(b, `">`...)
	b = append(b, status...)
	b = append(b, `</span>`...)
	if r.PurgedAt != nil {
		b = append(b, ` <span class="status purged" title="left the session table at `...)
		b = r.PurgedAt.UTC().AppendFormat(b, "2006-01-02 15:04:05")
		b = append(b, ` UTC">purged</span>`...)
	}
	b = append(b, `</td><td class="actions">`...)
	if !t.CanOperate { // a viewer, or the history: nothing to offer
		return append(b, `</td></tr>`...)
	}
	if status != "revoked" {
		b = append(b, `<a class="button small" href="/sessions/`...)
		b = append(b, id...)
		b = append(b, `/revoke`...)
		b = append(b, returnQuery...)
		b = append(b, `" hx-get="/sessions/`...)
		b = append(b, id...)
		b = append(b, `/revoke`...)
		b = append(b, returnQuery...)
		b = append(b, `" data-testid="revoke-session" aria-label="Revoke session `...)
		b = append(b, id...)
		b = append(b, `">Revoke</a>`...)
	}
	b = append(b, `</td></tr>`...)
	return b
}

// notRevoked is the Revoked cell of a session that is not revoked: a dash, and words for screen
// readers (the CLI's NULL stays in the CLI and the exports).
const notRevoked = `<span class="null"><span aria-hidden="true">—</span><span class="sr-only">not revoked</span></span>`

// appendTime appends a time cell: the CLI's text in a <time>, and a relative hint. The two
// forms of the time (RFC 3339 for the attribute, the CLI's for the text) are formatted by
// hand from one split of the time, and their common date and clock digits once:
// time.AppendFormat was a sixth of a page's render time.
func appendTime(b []byte, t, now time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	nanos := t.Nanosecond()
	if year < 0 || year > 9999 { // PostgreSQL's timestamps reach year 294276
		return appendTimeSlow(b, t, now)
	}
	var dt [19]byte // YYYY-MM-DDThh:mm:ss
	putDateTime(&dt, year, int(month), day, hour, min, sec)
	b = append(b, `<span class="tc"><time datetime="`...)
	b = append(b, dt[:]...)
	if nanos != 0 {
		b = appendFraction(b, nanos, 9) // RFC3339Nano: up to nanoseconds
	}
	b = append(b, `Z">`...)
	dt[10] = ' '
	b = append(b, dt[:]...)
	b = append(b, '.')
	b = appendDigits(b, nanos/1000, 6)
	b = append(b, "\u00a0UTC</time><span class=\"hint\">"...)
	b = AppendRelative(b, t, now)
	return append(b, `</span></span>`...)
}

// appendTimeSlow is appendTime for any year.
func appendTimeSlow(b []byte, t, now time.Time) []byte {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	b = append(b, `<span class="tc"><time datetime="`...)
	b = appendDateTime(b, year, int(month), day, 'T', hour, min, sec)
	if t.Nanosecond() != 0 {
		b = appendFraction(b, t.Nanosecond(), 9)
	}
	b = append(b, `Z">`...)
	b = appendCellTime(b, year, int(month), day, hour, min, sec, t.Nanosecond()/1000)
	b = append(b, `</time><span class="hint">`...)
	b = AppendRelative(b, t, now)
	return append(b, `</span></span>`...)
}

// twoDigits holds "00" to "99".
const twoDigits = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// putDateTime writes YYYY-MM-DDThh:mm:ss (years 0 to 9999) into dt.
func putDateTime(dt *[19]byte, year, month, day, hour, min, sec int) {
	put2 := func(i, n int) { dt[i], dt[i+1] = twoDigits[2*n], twoDigits[2*n+1] }
	put2(0, year/100%100)
	put2(2, year%100)
	dt[4], dt[7], dt[10], dt[13], dt[16] = '-', '-', 'T', ':', ':'
	put2(5, month)
	put2(8, day)
	put2(11, hour)
	put2(14, min)
	put2(17, sec)
}

// CellTime is t as the web console's cells show it: the CLI's UTC wall time with fixed six-digit
// microseconds, so that the times of a column line up, and a UTC mark
// ("2006-01-02 15:04:05.000000 UTC", the mark after a no-break space). The CLI and the exports
// keep cockroach's form, trailing zeros dropped.
func CellTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	return string(appendCellTime(nil, year, int(month), day, hour, min, sec, t.Nanosecond()/1000))
}

func appendCellTime(b []byte, year, month, day, hour, min, sec, micro int) []byte {
	b = appendDateTime(b, year, month, day, ' ', hour, min, sec)
	b = append(b, '.')
	b = appendDigits(b, micro, 6)
	return append(b, "\u00a0UTC"...)
}

// appendDateTime appends YYYY-MM-DD<sep>hh:mm:ss.
func appendDateTime(b []byte, year, month, day int, sep byte, hour, min, sec int) []byte {
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, month, 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, sep)
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	return appendDigits(b, sec, 2)
}

// appendDigits appends n (0 <= n) zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var buf [10]byte
	i := len(buf)
	for n > 0 || width > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	return append(b, buf[i:]...)
}

// appendFraction appends "." and the digits of a fraction of width digits, without trailing
// zeros (n > 0).
func appendFraction(b []byte, n, width int) []byte {
	var buf [10]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	end := width
	for end > 0 && buf[end-1] == '0' {
		end--
	}
	b = append(b, '.')
	return append(b, buf[:end]...)
}

// appendShown appends ShowName(s), escaped: a username as people see it.
func appendShown(b []byte, s string) []byte {
	if !needsShowing(s) {
		return appendEscaped(b, s)
	}
	return appendEscaped(b, ShowName(s))
}

// htmlSpecial marks the bytes appendEscaped replaces.
var htmlSpecial = [256]bool{'<': true, '>': true, '&': true, '\'': true, '"': true}

// appendEscaped appends s escaped for HTML text and quoted attribute values.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if !htmlSpecial[s[i]] {
			continue
		}
		b = append(b, s[last:i]...)
		switch s[i] {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '\'':
			b = append(b, "&#39;"...)
		case '"':
			b = append(b, "&#34;"...)
		}
		last = i + 1
	}
	return append(b, s[last:]...)
}

// Relative says how far t is from now, rounded to the nearest unit: "in 52m", "3h ago", "now".
// A value that rounds up to the next unit is said in that unit (59m40s is "1h").
func Relative(t, now time.Time) string { return string(AppendRelative(nil, t, now)) }

// relativeUnits are Relative's units, each used below the next one's threshold.
var relativeUnits = [...]struct {
	unit   time.Duration
	suffix byte
	below  time.Duration // 0: no upper bound
}{{time.Second, 's', time.Minute}, {time.Minute, 'm', time.Hour}, {time.Hour, 'h', 48 * time.Hour}, {24 * time.Hour, 'd', 0}}

// AppendRelative appends Relative(t, now) to b.
func AppendRelative(b []byte, t, now time.Time) []byte {
	d := t.Sub(now)
	future := d > 0
	if d < 0 {
		d = -d
		if d < 0 { // math.MinInt64
			d = math.MaxInt64
		}
	}
	if d < time.Second/2 { // rounds to 0s
		return append(b, "now"...)
	}
	if future {
		b = append(b, "in "...)
	}
	// d rounded to the nearest unit (halves away from zero), as d.Round(unit)/unit, in
	// integers: Round was a tenth of a page's render time.
	for _, u := range relativeUnits {
		n := int64(d / u.unit)
		if r := d % u.unit; r >= u.unit-r {
			n++
		}
		if u.below == 0 || n < int64(u.below/u.unit) {
			b = append(strconv.AppendInt(b, n, 10), u.suffix)
			break
		}
	}
	if !future {
		b = append(b, " ago"...)
	}
	return b
}
