package browser

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// box is where an element is drawn, in CSS pixels of the viewport.
type box struct {
	Left, Right, Width, Height float64
	Display, Visibility        string
	// Visible is checkVisibility(): false also inside a closed <details>.
	Visible bool
}

func elementBox(t *testing.T, ctx context.Context, css string) box {
	t.Helper()
	return eval[box](t, ctx, `(() => { const e = document.querySelector(`+jsString(css)+`); const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
		return {Left: r.left, Right: r.right, Width: r.width, Height: r.height, Display: s.display, Visibility: s.visibility,
		Visible: e.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true})}; })()`)
}

// checkLayout checks that the page does not scroll sideways and that the issue form and the
// sessions table are drawn inside the viewport's width.
func checkLayout(t *testing.T, ctx context.Context, width int64) {
	t.Helper()
	if sw := eval[int64](t, ctx, `document.documentElement.scrollWidth`); sw > width {
		wide := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.dataset.testid ? "[" + e.dataset.testid + "]" : "") + "." + e.className)`)
		t.Errorf("at %d px the page is %d px wide (it scrolls sideways); widest elements: %v", width, sw, wide)
	}
	if iw := eval[int64](t, ctx, `window.innerWidth`); iw != width {
		t.Errorf("window.innerWidth = %d, want the emulated %d", iw, width)
	}
	if width <= 720 {
		// Narrow screens show each session as a card: nothing may stick out of its card.
		out := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).flatMap(r => {
			const right = r.getBoundingClientRect().right;
			return Array.from(r.querySelectorAll("*")).filter(e => e.getBoundingClientRect().right > right + 0.5)
				.map(e => e.tagName.toLowerCase() + " " + JSON.stringify(e.textContent.trim().slice(0, 40)) + " ends at " + Math.round(e.getBoundingClientRect().right) + " px, its card at " + Math.round(right) + " px");
		}).slice(0, 5)`)
		if len(out) > 0 {
			t.Errorf("at %d px, content sticks out of the session cards: %v", width, out)
		}
	}
	for _, id := range []string{"issue-open", "sessions-table"} {
		b := elementBox(t, ctx, `[data-testid="`+id+`"]`)
		if b.Width <= 0 || b.Height <= 0 || !b.Visible {
			t.Errorf("at %d px the %s is not visible: %+v", width, id, b)
		}
		if b.Left < 0 || b.Right > float64(width)+0.5 {
			t.Errorf("at %d px the %s spills out of the viewport: %+v", width, id, b)
		}
	}
	if width > 720 {
		// The table fits its frame: long names wrap, Status and the actions stay inside.
		if over := eval[float64](t, ctx, `(() => { const w = document.querySelector(".table-wrap"); return w.scrollWidth - w.clientWidth; })()`); over > 1 {
			t.Errorf("at %d px the table is %.0f px wider than its frame: columns are pushed out", width, over)
		}
		// The actions column is a table cell, its borders in line with the row's.
		bad := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="session-row"]')).flatMap(r => {
			const c = r.querySelector("td.actions"), rb = r.getBoundingClientRect(), cb = c.getBoundingClientRect();
			const d = getComputedStyle(c).display;
			return d !== "table-cell" || Math.abs(cb.top - rb.top) > 1 || Math.abs(cb.bottom - rb.bottom) > 1 ?
				[r.dataset.sessionId + ": display " + d + ", cell " + Math.round(cb.top) + "-" + Math.round(cb.bottom) + ", row " + Math.round(rb.top) + "-" + Math.round(rb.bottom)] : [];
		}).slice(0, 5)`)
		if len(bad) > 0 {
			t.Errorf("at %d px the actions cells do not line up with their rows: %v", width, bad)
		}
	}
}

func TestLayout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		user          string
		width, height int64
		shot          string
	}{
		{"wide", "layout_wide_user", 1280, 900, "sessions-wide"},
		{"wide, long username", "layout_w_" + strings.Repeat("long", 13), 1280, 900, "sessions-wide-long-username"},
		{"360 px", "layout_narrow_user", 360, 800, "sessions-360"},
		// PostgreSQL takes names of up to 63 bytes, CockroachDB longer ones; no spaces to wrap at.
		{"360 px, long username", "layout_" + strings.Repeat("long", 14), 360, 800, "sessions-360-long-username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seed(t, tc.user, 2)
			ctx := newTab(t)
			do(t, ctx, "set the viewport", chromedp.EmulateViewport(tc.width, tc.height))
			signIn(t, ctx)
			navigate(t, ctx, "/sessions?status=all&user="+tc.user)
			waitJS(t, ctx, "the user's sessions", allRowsJS(tc.user, 2, "active"))
			checkLayout(t, ctx, tc.width)
			screenshot(t, ctx, tc.shot)

			// With an issued cookie, its curl line and API header shown.
			issueWithJS(t, ctx, tc.user, "1h", "")
			checkLayout(t, ctx, tc.width)
			screenshot(t, ctx, tc.shot+"-issued")

			// The revoked view (short and long names of every test).
			navigate(t, ctx, "/sessions?status=revoked")
			checkLayout(t, ctx, tc.width)
			screenshot(t, ctx, tc.shot+"-revoked")

			// The audit log's entries for the name fit their frame too, with every column filled
			// and a long admin name beside the long target: a table wider than its frame would
			// scroll, a region the keyboard cannot reach (axe: scrollable-region-focusable).
			cli(t, "sql", "-e", `INSERT INTO console.audit_log (admin, action, target, session_id, expires_at, count, remote_addr)
				VALUES ('oidc:`+strings.Repeat("long", 12)+`@example.com', 'revoke-all', '`+tc.user+`', 9223372036854775807,
				now() AT TIME ZONE 'UTC', 7200, '2001:db8:1234:5678:9abc:def0:1234:5678')`)
			navigate(t, ctx, "/audit?target="+tc.user)
			if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="audit-table"] tbody tr').length`); n < 4 {
				t.Errorf("the audit log lists %d entries for %s, want its 3 issues and the planted one", n, tc.user)
			}
			if over := eval[float64](t, ctx, `(() => { const w = document.querySelector(".table-wrap"); return w.scrollWidth - w.clientWidth; })()`); tc.width > 720 && over > 1 {
				t.Errorf("at %d px the audit table is %.0f px wider than its frame", tc.width, over)
			}
			if sw := eval[int64](t, ctx, `document.documentElement.scrollWidth`); sw > tc.width {
				t.Errorf("at %d px the audit page is %d px wide (it scrolls sideways)", tc.width, sw)
			}
			screenshot(t, ctx, tc.shot+"-audit")
		})
	}
}

// The sessions list is the page's main content: on a phone and on a desktop it starts on the
// first screen, and issuing is a button that opens its panel (also without JavaScript).
func TestListIsTheMainContent(t *testing.T) {
	t.Parallel()
	for _, js := range []bool{true, false} {
		for _, size := range [][2]int64{{390, 844}, {1280, 800}} {
			t.Run(fmt.Sprintf("%dx%d js %v", size[0], size[1], js), func(t *testing.T) {
				t.Parallel()
				user := fmt.Sprintf("main_%d_%v", size[0], js)
				seed(t, user, 1)
				ctx := newTab(t)
				if !js {
					ctx = newNoJSTab(t)
				}
				do(t, ctx, "set the viewport", chromedp.EmulateViewport(size[0], size[1]))
				signIn(t, ctx)
				if b := elementBox(t, ctx, `[data-testid="issue-form"]`); b.Visible {
					t.Errorf("the issue form is shown before it is asked for: %+v", b)
				}
				top := eval[float64](t, ctx, `document.querySelector('[data-testid="session-row"]').getBoundingClientRect().top`)
				if top >= float64(size[1]) {
					t.Errorf("the first session row starts at %.0f px, below the first screen (%d px)", top, size[1])
				}
				do(t, ctx, "open the issue panel", chromedp.Click(byTestID("issue-open")))
				if b := elementBox(t, ctx, `[data-testid="issue-form"]`); !b.Visible {
					t.Errorf("the issue form does not open from its button: %+v", b)
				}
			})
		}
	}
}

// contrastJS defines contrast(a, b) (WCAG ratio of two CSS colours) and behind(e) (the colour
// an element is drawn on: the first opaque background of its ancestors).
const contrastJS = `
	const rgb = c => c.match(/[\d.]+/g).map(Number);
	const lum = c => { const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
	const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
	const opaque = c => { const v = rgb(c); return v.length < 4 || v[3] === 1; };
	const behind = e => { for (let p = e.parentElement; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor; if (opaque(c)) return c; } return "rgb(255, 255, 255)"; };
`

// Focus rings and form borders keep a 3:1 contrast in light and dark, the ring stays in
// forced-colours mode, invalid fields are red, and inputs do not look disabled.
func TestFocusRingAndBorders(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"light", "dark"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			ctx := newTab(t)
			emulateScheme(t, ctx, scheme)
			signIn(t, ctx)
			pauseAutoRefresh(t, ctx)
			type ring struct {
				What     string
				Style    string
				Width    float64
				Contrast float64
			}
			focused := func() ring {
				return eval[ring](t, ctx, `(() => {`+contrastJS+` const e = document.activeElement, s = getComputedStyle(e);
					return {What: e.tagName + "#" + e.id + "[" + (e.dataset.testid || "") + "]", Style: s.outlineStyle,
						Width: parseFloat(s.outlineWidth) || 0, Contrast: s.outlineStyle === "none" ? 0 : contrast(s.outlineColor, behind(e))}; })()`)
			}
			// Tab through the first controls of the page: links, buttons, fields, selects.
			for i := 0; i < 14; i++ {
				do(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
				r := focused()
				if r.Style == "none" || r.Width < 2 || r.Contrast < 3 {
					t.Errorf("%s: focus ring of %s is %s %.1fpx at %.2f:1, want a solid ring of at least 2px and 3:1", scheme, r.What, r.Style, r.Width, r.Contrast)
				}
			}
			borders := eval[[]string](t, ctx, `(() => {`+contrastJS+` return Array.from(document.querySelectorAll("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select"))
				.filter(e => e.getClientRects().length > 0).flatMap(e => { const s = getComputedStyle(e), c = contrast(s.borderTopColor, behind(e));
					const out = [];
					if (c < 3) out.push(e.id + " border " + c.toFixed(2) + ":1");
					if (s.backgroundColor !== behind(e) && opaque(s.backgroundColor)) out.push(e.id + " background " + s.backgroundColor + " on " + behind(e) + " (looks disabled)");
					return out; }); })()`)
			for _, b := range borders {
				t.Errorf("%s: form control %s", scheme, b)
			}

			// An invalid field gets its red border.
			fillIssueForm(t, ctx, "", "", "2x")
			setField(t, ctx, `[data-testid="issue-username"]`, "x")
			do(t, ctx, "submit", chromedp.Click(byTestID("issue-submit")))
			waitJS(t, ctx, "the field error", `document.querySelector('[data-testid="issue-expire-error"]') !== null`)
			waitSettled(t, ctx)
			inv := eval[map[string]string](t, ctx, `({border: getComputedStyle(document.getElementById("expire-custom")).borderTopColor,
				error: getComputedStyle(document.getElementById("issue-expire-error")).color})`)
			if inv["border"] != inv["error"] {
				t.Errorf("%s: the invalid field's border is %s, want the error colour %s", scheme, inv["border"], inv["error"])
			}

			// Forced colours (Windows high contrast): the ring is still drawn.
			if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}, {Name: "forced-colors", Value: "active"}},
			}); err != nil {
				t.Fatal(err)
			}
			do(t, ctx, "focus the filter", chromedp.Focus(byTestID("filter-user")))
			if r := focused(); r.Style == "none" || r.Width < 2 {
				t.Errorf("%s, forced colours: the focus ring of %s is %s %.1fpx: it vanishes", scheme, r.What, r.Style, r.Width)
			}
		})
	}
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	const user = "audited_user"
	seed(t, user, 0)
	ctx := newTab(t)
	signIn(t, ctx)
	issueWithJS(t, ctx, user, "15m", "")
	if st := navigate(t, ctx, "/audit?target="+user); st != http.StatusOK {
		t.Fatalf("audit page: HTTP %d, want 200", st)
	}
	type entry struct {
		Action, Admin, Target string
	}
	got := eval[[]entry](t, ctx, `Array.from(document.querySelectorAll('[data-testid="audit-row"]')).map(r => ({
		Action: r.dataset.action,
		Admin: r.querySelector('td[data-label="Admin"]').textContent,
		Target: r.querySelector('td[data-label="Target"]').textContent}))`)
	found := false
	for _, e := range got {
		if e.Target != user {
			t.Errorf("audit filtered by target %s lists an entry for %q: %+v", user, e.Target, e)
		}
		found = found || (e.Action == "issue" && e.Admin == "admin")
	}
	if !found {
		t.Errorf("audit entries for %s = %+v, want the issue by admin", user, got)
	}
	if v := get(t, ctx, "read the target filter", chromedp.Value(byTestID("audit-target"))); v != user {
		t.Errorf("audit target filter = %q, want %q", v, user)
	}
	navigate(t, ctx, "/audit")
	all := eval[string](t, ctx, `Array.from(document.querySelectorAll('[data-testid="audit-row"]')).map(r => r.dataset.action).join(" ")`)
	if !strings.Contains(all, "sign-in") {
		t.Errorf("the audit log does not list any sign-in: %q", all)
	}
	screenshot(t, ctx, "audit")
}
