package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"
)

// httpFloor serves every case's floor behind a bare net/http handler, in a process of its own
// as the console is (floorproc.go), or with Config.FloorInProcess in the bench process. Set
// beside the console, it tells how much of the gap to the floor is the HTTP round trip itself
// (server, client and the process hop) and how much is the console's own work. Two answers,
// each after the case's database work on raw pgx:
//
//	GET /floor/KEY        the result as plain text (list rows as CSV lines, the cookie, the CSV stream)
//	GET /floor/KEY/sized  the console's own answer for the case, recorded once before timing
//	                      (status, headers and body, written in one write): the same bytes as
//	                      the console sends, so that the comparison is of HTTP, not of sizes
//	PUT /floor/KEY/answer that answer, recorded by the bench (a floor process's cases are its own)
type httpFloor struct {
	URL string
	// PID is the floor process's (0: served in this process).
	PID int
	srv *http.Server
	n   atomic.Int64
	// proc and stdin are the floor process's; closing stdin ends it.
	proc  *exec.Cmd
	stdin io.Closer
}

func startHTTPFloor(cases []*benchCase) (*httpFloor, error) {
	byKey := map[string]*benchCase{}
	for _, bc := range cases {
		if bc.floor != nil {
			byKey[bc.Key] = bc
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &httpFloor{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /floor/{key}", func(w http.ResponseWriter, r *http.Request) {
		bc := byKey[r.PathValue("key")]
		if bc == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		bw := bufio.NewWriterSize(w, 32<<10)
		if _, err := bc.floor(r.Context(), bw, 0, int(f.n.Add(1))); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		bw.Flush()
	})
	mux.HandleFunc("GET /floor/{key}/sized", func(w http.ResponseWriter, r *http.Request) {
		bc := byKey[r.PathValue("key")]
		if bc == nil || bc.answer.Load() == nil {
			http.NotFound(w, r)
			return
		}
		a := bc.answer.Load()
		if _, err := bc.floor(r.Context(), nil, 0, int(f.n.Add(1))); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		maps.Copy(h, a.header)
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(a.status)
		w.Write(a.body)
	})
	mux.HandleFunc("PUT /floor/{key}/answer", func(w http.ResponseWriter, r *http.Request) {
		bc := byKey[r.PathValue("key")]
		var a answerJSON
		if bc == nil {
			http.NotFound(w, r)
			return
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxRecordedAnswer)).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		bc.answer.Store(&recordedAnswer{status: a.Status, header: a.Header, body: a.Body})
		w.WriteHeader(http.StatusNoContent)
	})
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
	return f, nil
}

// op is the load generator's operation on an HTTP floor of case bc: the plain-text one, or
// with sized the one that answers the console's recorded answer. It sends the case's request
// header and the cookies of like (the console's client, when given), so that the floor
// receives a request of the console's size too.
func (f *httpFloor) op(c *Client, bc *benchCase, sized bool) func(ctx context.Context, worker, i int) (int64, error) {
	rows := bc.Unit == "rows/s"
	path := "/floor/" + bc.Key
	if sized {
		path += "/sized"
	}
	want := []int{http.StatusOK}
	if a := bc.answer.Load(); sized && a != nil {
		want = []int{a.status}
	}
	return func(ctx context.Context, _, _ int) (int64, error) {
		resp, err := c.Do(ctx, Request{Path: path, Header: bc.header, Count: rows, Want: want})
		if rows {
			return resp.Lines - 1, err
		}
		return 1, err
	}
}

// CopyCookies gives c the cookies of from.
func (c *Client) CopyCookies(from *Client) {
	from.mu.RLock()
	cookies := maps.Clone(from.cookies)
	from.mu.RUnlock()
	c.mu.Lock()
	c.cookies = cookies
	c.mu.Unlock()
}

// Close stops the floor: its server, or its process (stdin closed, then killed if it has not
// ended within 10 s).
func (f *httpFloor) Close() error {
	if f.proc != nil {
		f.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- f.proc.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			f.proc.Process.Kill()
			return <-done
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
