package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/sessionstore"
)

// The HTTP floors run in a process of their own, as the console does: the bench binary started
// again with floorProcessEnv set. Served from the bench process itself, beside the load
// generator, a floor shared its Go runtime: a request and its answer crossed no process
// boundary on the floor's side (the server's goroutines ran on threads the load generator kept
// awake), which no server in a process of its own can do. Measured on this machine (2 cores,
// 16 clients, the same net/http handler and pgx pool in both places), the separate process
// made 0.78-0.82 of the in-process server's requests for a point select with an empty answer
// and 0.66-0.72 for a 50-row select with an 84 KB answer: the floors were that much above what
// any server could reach. Config.FloorInProcess keeps the old way, for comparison.
const floorProcessEnv = "BENCH_FLOOR_PROCESS"

// floorSpec is what a floor process needs to build its size's cases: the parent's seeding of
// that size (the floors' database work reads it: cookies, IDs, users, cursors).
type floorSpec struct {
	DBURL  string  `json:"db_url"`
	Config Config  `json:"config"`
	Data   Dataset `json:"data"`
	Seeded Seeded  `json:"seeded"`
}

// MaybeServeFloors makes this process a floor process when the bench started it as one
// (floorProcessEnv set): it reads its floorSpec from stdin, builds the cases, serves their
// HTTP floors, prints its URL on stdout, and exits when stdin closes (the bench stops it, or
// ended). Otherwise it returns at once. cmd/bench's main and this package's TestMain call it
// first.
func MaybeServeFloors() {
	if os.Getenv(floorProcessEnv) == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := serveFloors(ctx, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench floor process:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveFloors is a floor process: see MaybeServeFloors.
func serveFloors(ctx context.Context, in io.Reader, out io.Writer) error {
	var spec floorSpec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return fmt.Errorf("reading the spec: %w", err)
	}
	cfg := spec.Config
	pool, err := pgdb.Connect(ctx, spec.DBURL, pgdb.Config{MaxConns: int32(max(cfg.Clients, 4))})
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := sessionstore.Open(ctx, pool, sessionstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	auditLog, err := audit.Open(ctx, pool, pgdb.Postgres)
	if err != nil {
		return err
	}
	h, err := history.Open(ctx, pool, history.Options{Live: store, Server: pgdb.Postgres})
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench floor process: "+format+"\n", args...) }
	e := &sizeEnv{cfg: &cfg, pool: pool, store: store, seeded: &spec.Seeded, data: spec.Data, logf: logf}
	cases, _, err := e.buildCases(ctx, &historyEnv{store: h, tx: history.PlainTx{Pool: pool}}, auditLog)
	if err != nil {
		return err
	}
	f, err := startHTTPFloor(cases)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := fmt.Fprintln(out, f.URL); err != nil {
		return err
	}
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, in) // until the bench closes stdin, or ends
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	return nil
}

// startFloorProcess starts the floor process of one size (see floorProcessEnv) and returns its
// floor once it serves. Its CPU is measured as the console's is (httpFloor.PID).
func startFloorProcess(spec floorSpec) (*httpFloor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), floorProcessEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &httpFloor{PID: cmd.Process.Pid, proc: cmd, stdin: stdin}
	url := make(chan string, 1)
	go func() {
		defer close(url)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			url <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	err = json.NewEncoder(stdin).Encode(spec)
	if err == nil {
		select {
		case u, ok := <-url:
			if ok {
				f.URL = u
				return f, nil
			}
			err = errors.New("it ended before serving")
		case <-time.After(5 * time.Minute):
			err = errors.New("it did not serve within 5 minutes")
		}
	}
	f.Close()
	return nil, fmt.Errorf("bench: the HTTP floors' process: %w", err)
}

// answerJSON is a recorded answer as the bench sends it to a floor process.
type answerJSON struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// send gives the floor the console's answer that bc recorded, for its same-size floor: a floor
// process holds cases of its own. Served in the bench process, the floor reads bc itself.
func (f *httpFloor) send(ctx context.Context, bc *benchCase) error {
	a := bc.answer.Load()
	if f == nil || f.proc == nil || a == nil {
		return nil
	}
	b, err := json.Marshal(answerJSON{Status: a.status, Header: a.header, Body: a.body})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.URL+"/floor/"+bc.Key+"/answer", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("bench: the HTTP floors' process took case %s's answer with status %d", bc.Key, resp.StatusCode)
	}
	return nil
}
