package templates

import (
	"context"
	"io"

	"github.com/a-h/templ"
)

// timeCell renders a TimeCell: <time> with its text and a relative hint (no ISO: the text alone). It is
// written by hand (not as a templ component) because a page has hundreds of them and the
// generated component's per-call setup dominated the table's render time.
func timeCell(t TimeCell) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		if t.ISO == "" {
			_, err := io.WriteString(w, `<span class="null">`+templ.EscapeString(t.Text)+`</span>`)
			return err
		}
		s := `<span class="tc"><time datetime="` + templ.EscapeString(t.ISO) + `">` + templ.EscapeString(t.Text) + `</time>`
		if t.Hint != "" {
			s += `<span class="hint">` + templ.EscapeString(t.Hint) + `</span>`
		}
		s += `</span>`
		_, err := io.WriteString(w, s)
		return err
	})
}
