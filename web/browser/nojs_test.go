package browser

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// newNoJSTab opens a tab that runs none of the page's scripts (htmx and app.js stay inert; the
// test can still evaluate expressions through the DevTools protocol).
func newNoJSTab(t *testing.T) context.Context {
	t.Helper()
	ctx := newTab(t)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("disable JavaScript: %v", err)
	}
	return ctx
}

// location returns the tab's address without the server's origin.
func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	loc := get(t, ctx, "read the location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("location %q: %v", loc, err)
	}
	return u
}

// rowTimes reads the created and expires cells (<time datetime>) of a session's row.
func rowTimes(t *testing.T, ctx context.Context, id string) (created, expires time.Time) {
	t.Helper()
	var ts [2]time.Time
	for i, label := range []string{"Created", "Expires"} {
		sel := `tr[data-session-id="` + id + `"] td[data-label="` + label + `"] time`
		attr := get(t, ctx, "read "+sel, chromedp.AttributeValue(chromedp.CSS(sel), "datetime"))
		v, err := time.Parse(time.RFC3339Nano, attr.Value)
		if err != nil {
			t.Fatalf("%s datetime %q: %v", sel, attr.Value, err)
		}
		ts[i] = v
	}
	return ts[0], ts[1]
}

func TestWithoutJavaScript(t *testing.T) {
	t.Parallel()
	const (
		filtered = "nojs_filter"
		issued   = "nojs_issue"
		paged    = "nojs_pages"
	)
	seed(t, filtered, 2)
	seed(t, filtered+"_other", 1)
	seed(t, issued, 0)
	seed(t, paged, 3)
	ctx := newNoJSTab(t)

	if !t.Run("sign in", func(t *testing.T) {
		signIn(t, ctx)
		// app.js would unhide the .js-only controls: they stay hidden, so no script ran.
		if a := get(t, ctx, "read the pause button", chromedp.AttributeValue(byTestID("pause-refresh"), "hidden")); !a.Exists {
			t.Fatalf("the JavaScript-only pause button is shown: the page's scripts ran")
		}
	}) {
		t.FailNow()
	}

	t.Run("filter by submitting the form", func(t *testing.T) {
		do(t, ctx, "type the username", chromedp.SendKeys(byTestID("filter-user"), filtered))
		if st := navClick(t, ctx, "apply the filters", byTestID("filter-apply")); st != http.StatusOK {
			t.Fatalf("applying the filters: HTTP %d, want 200", st)
		}
		if got := location(t, ctx).Query().Get("user"); got != filtered {
			t.Errorf("after submitting the filters the address has user=%q, want %q", got, filtered)
		}
		if got := eval[bool](t, ctx, allRowsJS(filtered, 2, "active")); !got {
			t.Errorf("the table rows are %v, want the 2 active sessions of %s only", rows(t, ctx), filtered)
		}
	})

	t.Run("revoke all through the confirmation page", func(t *testing.T) {
		back := location(t, ctx).RequestURI()
		sel := byTestID("revoke-filtered-user")
		if st := navClick(t, ctx, "follow revoke all", sel); st != http.StatusOK {
			t.Fatalf("the confirmation page: HTTP %d, want 200", st)
		}
		if p := location(t, ctx).Path; p != "/users/"+filtered+"/revoke" {
			t.Errorf("the confirmation page is at %s, want /users/%s/revoke", p, filtered)
		}
		msg := get(t, ctx, "read the confirmation", chromedp.TextContent(byTestID("confirm-message")))
		if !strings.Contains(msg, "This ends 2 active sessions of "+filtered) {
			t.Errorf("confirm-message = %q, want it to say it ends 2 active sessions of %s", msg, filtered)
		}
		if m := eval[string](t, ctx, `document.querySelector('[data-testid="confirm-revoke"]').form.method`); m != "post" {
			t.Errorf("the confirmation form's method is %q, want post", m)
		}
		if st := navClick(t, ctx, "confirm", byTestID("confirm-revoke")); st != http.StatusOK {
			t.Fatalf("after confirming: HTTP %d, want 200 (after the redirect)", st)
		}
		if got := location(t, ctx); got.Path != "/sessions" || got.Query().Get("user") != filtered {
			t.Errorf("after revoking, the page is %s, want the view it came from (%s)", got.RequestURI(), back)
		}
		notice := get(t, ctx, "read the notice", chromedp.TextContent(byTestID("notice")))
		if want := "Revoked 2 sessions of " + filtered + " (2 were active)."; notice != want {
			t.Errorf("notice = %q, want %q", notice, want)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-row"]').length`); n != 0 {
			t.Errorf("the active view still lists %d sessions of %s: %v", n, filtered, rows(t, ctx))
		}
		// The notice is shown once.
		navigate(t, ctx, back)
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="notice"]').length`); n != 0 {
			t.Errorf("the notice is shown again on the next visit")
		}
	})

	var value string
	t.Run("issue", func(t *testing.T) {
		cases := []struct {
			name, preset, custom string
			want                 time.Duration
		}{
			{"preset 8h", "8h", "", 8 * time.Hour},
			{"custom 4h30m", "", "4h30m", 4*time.Hour + 30*time.Minute},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				navigate(t, ctx, "/sessions")
				openIssuePanel(t, ctx)
				typeInto(t, ctx, "type the username", "issue-username", issued)
				if tc.custom == "" {
					do(t, ctx, "choose "+tc.preset, chromedp.Click(byTestID("expire-"+tc.preset)))
				} else {
					do(t, ctx, "choose a custom expiry",
						chromedp.Click(byTestID("expire-custom")),
						chromedp.SendKeys(byTestID("expire-custom-input"), tc.custom))
				}
				if st := navClick(t, ctx, "submit the issue form", byTestID("issue-submit")); st != http.StatusOK {
					t.Fatalf("issuing: HTTP %d, want 200", st)
				}
				if u := get(t, ctx, "read the issued username", chromedp.TextContent(byTestID("issued-username"))); u != issued {
					t.Errorf("issued-username = %q, want %q", u, issued)
				}
				value = cookieValue(t, get(t, ctx, "read the cookie", chromedp.TextContent(byTestID("issued-cookie"))))
				id := get(t, ctx, "read the session ID", chromedp.TextContent(byTestID("issued-session-id")))
				// Downloading the cookie file is a plain form post.
				form := eval[map[string]string](t, ctx, `(() => { const f = document.querySelector('[data-testid="download-cookie"]').form;
					return {action: f.getAttribute("action"), method: f.method, cookie: f.elements.cookie.value, csrf: f.elements._csrf.value}; })()`)
				if form["action"] != "/sessions/cookie-file" || form["method"] != "post" || form["cookie"] != value || form["csrf"] == "" {
					t.Errorf("download form = %v, want a post to /sessions/cookie-file with the cookie value and a CSRF token", form)
				}
				navigate(t, ctx, "/sessions?status=all&user="+issued)
				created, expires := rowTimes(t, ctx, id)
				if d := expires.Sub(created); d != tc.want {
					t.Errorf("session %s: expires - created = %s, want %s", id, d, tc.want)
				}
			})
		}
	})
	if value != "" {
		if st, who := verify(t, value, false); st != http.StatusOK || who != issued {
			t.Errorf("the cookie issued without JavaScript: verify gives HTTP %d, X-Auth-User %q; want 200 and %q", st, who, issued)
		}
	}

	t.Run("paging links are plain links", func(t *testing.T) {
		navigate(t, ctx, "/sessions?limit=2&user="+paged)
		if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid="session-row"]').length`); n != 2 {
			t.Fatalf("page 1 with limit=2 lists %d sessions, want 2", n)
		}
		next := get(t, ctx, "read the next link", chromedp.AttributeValue(byTestID("next-page"), "href"))
		if !strings.Contains(next.Value, "after=") {
			t.Fatalf("next-page href = %q, want a link with after=", next.Value)
		}
		if st := navClick(t, ctx, "follow the next link", byTestID("next-page")); st != http.StatusOK {
			t.Fatalf("page 2: HTTP %d, want 200", st)
		}
		if q := location(t, ctx).Query(); q.Get("after") == "" || q.Get("user") != paged {
			t.Errorf("page 2 is at %s, want user=%s and an after= position", location(t, ctx), paged)
		}
		if !eval[bool](t, ctx, allRowsJS(paged, 1, "")) {
			t.Errorf("page 2 lists %v, want the last session of %s", rows(t, ctx), paged)
		}
		if st := navClick(t, ctx, "follow the previous link", byTestID("prev-page")); st != http.StatusOK {
			t.Fatalf("back to page 1: HTTP %d, want 200", st)
		}
		if !eval[bool](t, ctx, allRowsJS(paged, 2, "")) {
			t.Errorf("the previous page lists %v, want the first 2 sessions of %s", rows(t, ctx), paged)
		}
	})
}
