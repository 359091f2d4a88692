package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/internal/pgdb"
)

// The default deadlines of a request's database work.
const (
	DefaultVerifyTimeout = 2 * time.Second
	DefaultPageTimeout   = 5 * time.Second
)

// statusClientClosed is what the access log says of a request whose client went away before
// the answer (nginx's 499); nobody receives it.
const statusClientClosed = 499

type parentKey struct{}

// dbDeadline gives the database work of every request a deadline (VerifyTimeout for
// /auth/verify, PageTimeout for everything else), so that a database that hangs (a lock, a
// stopped server, a stalled network) answers 503 quickly instead of never. Exports stream for
// as long as rows keep coming: they watch for stalls instead (see watchStalls). Rendering
// uses the request's own context, so a page whose queries ended just in time still renders.
func (h *Handler) dbDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		d := h.cfg.PageTimeout
		if c.Path() == "/auth/verify" {
			d = h.cfg.VerifyTimeout
		}
		r := c.Request()
		parent := r.Context()
		ctx, cancel := context.WithTimeout(context.WithValue(parent, parentKey{}, parent), d)
		defer cancel()
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// requestContext is the request's context without the database deadline: cancelled only when
// the client goes away.
func requestContext(c echo.Context) context.Context {
	ctx := c.Request().Context()
	if p, ok := ctx.Value(parentKey{}).(context.Context); ok {
		return p
	}
	return ctx
}

// clientGone reports whether the client of c went away (its connection closed).
func clientGone(c echo.Context) bool {
	return errors.Is(requestContext(c).Err(), context.Canceled)
}

var errStalled = errors.New("no row from the database")

// stallWatch cancels a streamed read when no row arrives for too long, without limiting the
// stream as a whole: a million-row export takes as long as it takes while rows keep coming,
// and time spent writing to a slow client does not count.
type stallWatch struct {
	rows    atomic.Int64
	writing atomic.Bool
	done    chan struct{}
}

// watchStalls returns a context for a streamed read that is cancelled (with cause errStalled)
// once no row has arrived for d, and stop, which ends the watch.
func watchStalls(parent context.Context, d time.Duration) (ctx context.Context, w *stallWatch, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	w = &stallWatch{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(max(d/10, time.Millisecond))
		defer tick.Stop()
		last, since := w.rows.Load(), time.Now()
		for {
			select {
			case <-w.done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if n := w.rows.Load(); n != last || w.writing.Load() {
					last, since = n, now
				} else if now.Sub(since) >= d {
					cancel(fmt.Errorf("%w: %w within %s", pgdb.ErrUnavailable, errStalled, d))
					return
				}
			}
		}
	}()
	return ctx, w, func() { close(w.done); cancel(nil) }
}

// row brackets the handling of one row: the time until done is the client's, not the
// database's.
func (w *stallWatch) row() (done func()) {
	w.rows.Add(1)
	w.writing.Store(true)
	return func() { w.writing.Store(false) }
}

// deadlineWriter gives every write of a streamed response its own deadline (timeout from
// now, renewed at most once a second), in place of the server's WriteTimeout for the whole
// response, which a long export would outlive.
type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	renewed time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.timeout > 0 {
		if now := time.Now(); now.Sub(d.renewed) >= time.Second {
			d.renewed = now
			d.rc.SetWriteDeadline(now.Add(d.timeout + time.Second))
		}
	}
	return d.w.Write(p)
}
