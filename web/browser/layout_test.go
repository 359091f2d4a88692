package browser

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// box is where an element is drawn, in CSS pixels of the viewport.
type box struct {
	Left, Right, Width, Height float64
	Display, Visibility        string
}

func elementBox(t *testing.T, ctx context.Context, css string) box {
	t.Helper()
	return eval[box](t, ctx, `(() => { const e = document.querySelector(`+jsString(css)+`); const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
		return {Left: r.left, Right: r.right, Width: r.width, Height: r.height, Display: s.display, Visibility: s.visibility}; })()`)
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
	for _, id := range []string{"issue-form", "sessions-table"} {
		b := elementBox(t, ctx, `[data-testid="`+id+`"]`)
		if b.Width <= 0 || b.Height <= 0 || b.Display == "none" || b.Visibility != "visible" {
			t.Errorf("at %d px the %s is not visible: %+v", width, id, b)
		}
		if b.Left < 0 || b.Right > float64(width)+0.5 {
			t.Errorf("at %d px the %s spills out of the viewport: %+v", width, id, b)
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
