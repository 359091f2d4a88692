package handlers

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionconsole/console/internal/pgtest"
)

// writeCounter is a listener whose connections count their writes.
type writeCounter struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, writes: &l.writes}, nil
}

type countedConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A rendered page or fragment goes out with its length, not chunked, in as few writes as
// net/http allows: one for an answer that fits its 4 KB connection buffer, two for a larger
// one (the buffer with the headers, then the rest); chunking adds a third.
func TestRenderedAnswersHaveALength(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &writeCounter{Listener: inner}
	s := newServerListener(t, pgtest.NewDB(t), Config{}, 0, ln)
	user := s.createUser(t, "wr")
	for range 60 {
		s.issue(t, user, time.Hour)
	}
	c := s.signIn(t)
	for _, tc := range []struct {
		name      string
		get       func(string) response
		path      string
		maxWrites int64
	}{
		{"whole page", c.get, "/sessions", 2},
		{"table fragment", c.hxGet, "/sessions?limit=50", 2},
		{"small fragment", c.hxGet, "/sessions?limit=1&user=nobody", 0}, // 0: 1 if it fits the buffer
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.get("/healthz") // the connection is open and idle
			before := ln.writes.Load()
			r := tc.get(tc.path)
			wantStatus(t, r, 200)
			writes := ln.writes.Load() - before
			if len(r.TransferEncoding) != 0 || r.ContentLength != int64(len(r.body)) {
				t.Errorf("Transfer-Encoding %v, Content-Length %d for a body of %d bytes; want the length",
					r.TransferEncoding, r.ContentLength, len(r.body))
			}
			if tc.maxWrites == 0 { // one write when the headers and the body fit net/http's 4 KB buffer
				tc.maxWrites = 2
				if n := len(r.body) + headerBytes(r.Header) + len("HTTP/1.1 200 OK\r\n\r\n"); n <= 4096 {
					tc.maxWrites = 1
				}
			}
			if writes > tc.maxWrites {
				t.Errorf("%d writes for an answer of %s bytes, want at most %d", writes, strconv.Itoa(len(r.body)), tc.maxWrites)
			}
		})
	}
}

// headerBytes is the size of h as written on the wire (Date and Content-Length included: the
// client sees them).
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}
