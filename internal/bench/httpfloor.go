package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// httpFloor serves every case's floor behind a bare net/http handler in the bench process:
// GET /floor/ID does the case's database work on raw pgx and answers its result as plain text.
// Set beside the console, it tells how much of the gap to the floor is the HTTP round trip
// itself (server, client and the extra process hop) and how much is the console's own work.
type httpFloor struct {
	URL string
	srv *http.Server
	n   atomic.Int64
}

func startHTTPFloor(cases []*benchCase) (*httpFloor, error) {
	byID := map[string]*benchCase{}
	for _, bc := range cases {
		if bc.floor != nil {
			byID[bc.ID] = bc
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &httpFloor{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /floor/{id}", func(w http.ResponseWriter, r *http.Request) {
		bc := byID[r.PathValue("id")]
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
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
	return f, nil
}

// op is the load generator's operation on the HTTP floor of case bc.
func (f *httpFloor) op(c *Client, bc *benchCase) func(ctx context.Context, worker, i int) (int64, error) {
	rows := bc.Unit == "rows/s"
	return func(ctx context.Context, _, _ int) (int64, error) {
		resp, err := c.Do(ctx, Request{Path: "/floor/" + bc.ID, Count: rows})
		if rows {
			return resp.Lines - 1, err
		}
		return 1, err
	}
}

func (f *httpFloor) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
