package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// views are the widths and colour schemes the console's pages are looked at in.
var views = []struct {
	width, height int64
	scheme        string
}{{1280, 900, "light"}, {1280, 900, "dark"}, {390, 844, "light"}, {390, 844, "dark"}}

func setView(t *testing.T, ctx context.Context, width, height int64, scheme string) {
	t.Helper()
	do(t, ctx, "set the viewport", chromedp.EmulateViewport(width, height))
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
		t.Fatalf("emulate %s mode: %v", scheme, err)
	}
}

// A username with a bidirectional override shows it written out, <U+202E>, in the table, the
// user bar and the confirmation, never as the raw character (which would reverse the text
// after it).
func TestInvisibleCharactersShown(t *testing.T) {
	t.Parallel()
	const user = "ad\u202Enimda_bidi"
	const shown = "ad<U+202E>nimda_bidi"
	seed(t, user, 1)
	for _, v := range views {
		t.Run(fmt.Sprintf("%d %s", v.width, v.scheme), func(t *testing.T) {
			ctx := newTab(t)
			setView(t, ctx, v.width, v.height, v.scheme)
			signIn(t, ctx)
			pauseAutoRefresh(t, ctx)
			navigate(t, ctx, "/sessions?"+url.Values{"user": {user}, "status": {"all"}}.Encode())
			waitJS(t, ctx, "the user's session", allRowsJS(user, 1, "active"))
			for _, css := range []string{`[data-testid="row-user"]`, `[data-testid="filtered-user"]`} {
				text := eval[string](t, ctx, `document.querySelector(`+jsString(css)+`).textContent`)
				if !strings.Contains(text, shown) || strings.ContainsRune(text, '\u202E') {
					t.Errorf("%s shows %q, want %q written out", css, text, shown)
				}
			}
			if raw := eval[string](t, ctx, `document.body.innerText`); strings.ContainsRune(raw, '\u202E') {
				t.Errorf("the page shows the raw override somewhere")
			}
			screenshot(t, ctx, fmt.Sprintf("bidi-username-%d-%s", v.width, v.scheme))
		})
	}
}

// A wrong password says how many tries are left before sign-ins from here are delayed.
func TestWrongPasswordSaysTriesLeft(t *testing.T) {
	t.Parallel()
	for i, v := range views {
		t.Run(fmt.Sprintf("%d %s", v.width, v.scheme), func(t *testing.T) {
			ctx := newTab(t)
			setView(t, ctx, v.width, v.height, v.scheme)
			navigate(t, ctx, "/login")
			// A name of its own per view: the other tests sign in as admin from this address.
			do(t, ctx, "fill in the sign-in form",
				chromedp.SendKeys(chromedp.ID("login-username"), fmt.Sprintf("not_an_admin_%d", i)),
				chromedp.SendKeys(chromedp.ID("login-password"), "wrong password"))
			if st := navClick(t, ctx, "sign in", byTestID("sign-in")); st != http.StatusUnauthorized {
				t.Fatalf("a wrong password: HTTP %d, want 401", st)
			}
			msg := get(t, ctx, "read the error", chromedp.TextContent(byTestID("login-error")))
			if want := "Wrong admin name or password. 4 tries left before further sign-ins from this address are delayed."; msg != want {
				t.Errorf("the error says %q, want %q", msg, want)
			}
			screenshot(t, ctx, fmt.Sprintf("login-tries-left-%d-%s", v.width, v.scheme))
		})
	}
}
