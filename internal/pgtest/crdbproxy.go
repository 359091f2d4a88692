package pgtest

// A PostgreSQL wire-protocol proxy that gives the test PostgreSQL the behaviour of CockroachDB
// where the console depends on it. Hand-written on pgx's own protocol package (pgproto3): no
// library offers a programmable SQL-rewriting proxy, and the behaviour below is specific to what
// the console must survive on a real cluster.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// CockroachV26 is what the proxy answers to SELECT version() by default: a CockroachDB release
// where allow_unsafe_internals defaults to off and new tables are schema_locked.
const CockroachV26 = "CockroachDB CCL v26.1.0 (x86_64-pc-linux-gnu, built 2026/02/02 18:14:43, go1.25.5)"

// ProxyOptions choose the proxy's personality.
type ProxyOptions struct {
	// Version is the text of SELECT version(), "CockroachDB CCL vX.Y.Z ...". Its release decides
	// the behaviour: from v25.4 allow_unsafe_internals exists; from v26.1 it defaults to off
	// (every statement on system.* then fails with 42501 unless the session set it) and tables
	// are created schema_locked (an ALTER TABLE other than SET/RESET (schema_locked) on them
	// fails with 57000, as CockroachDB answers the statements that cannot unlock a table by
	// themselves). Before v25.4, SET allow_unsafe_internals is an unknown variable (42704).
	// AS OF SYSTEM TIME clauses are removed (and recorded) before forwarding, and the
	// CockroachDB-only session variables are kept by the proxy. Empty: no personality at all, a
	// plain PostgreSQL that records what it is sent (and fails on CockroachDB-only SQL).
	Version string
	// RefuseFullScans answers P0003, as a cluster with disallow_full_table_scans on does, to
	// statements that would read all of system.web_sessions (ScansWebSessions) or of a table of
	// the console's schema (ScansConsoleTable), unless the session set
	// disallow_full_table_scans off. Change it later with SetRefuseFullScans.
	RefuseFullScans bool
}

// FaultPoint is where an injected fault strikes.
type FaultPoint int

// The fault points.
const (
	// AtStatement fails a statement matching Fault.Match instead of running it.
	AtStatement FaultPoint = iota + 1
	// AtCommit fails the commit of a transaction in which a statement matching Fault.Match ran:
	// its first RELEASE SAVEPOINT cockroach_restart (CockroachDB's commit) or COMMIT.
	AtCommit
	// MidStream passes Fault.Rows rows of a statement matching Fault.Match and then fails it.
	MidStream
	// CutAfterCommit lets the commit of a transaction in which a statement matching Fault.Match
	// ran reach the server and commit there (after a RELEASE SAVEPOINT cockroach_restart, which
	// commits on CockroachDB, the proxy sends the COMMIT itself), then cuts the connection
	// before the client hears the outcome: a commit whose result the client cannot know.
	CutAfterCommit
)

// Fault is an error the proxy injects. Inject one with Proxy.Inject.
type Fault struct {
	Point FaultPoint
	// Match is a case-insensitive part of the statement's text; "" matches every statement.
	Match string
	// Rows is how many rows MidStream lets through first.
	Rows int
	// Code is the SQLSTATE (default 40001, a serialization failure: "restart transaction").
	Code string
	// Times is how often the fault strikes (default once).
	Times int

	fired int // guarded by Proxy.mu
}

// Proxy is a running proxy in front of the test cluster. Start one with StartProxy.
type Proxy struct {
	opts    ProxyOptions
	ln      net.Listener
	cluster string // URL of the test cluster (host, port, TLS settings)
	major   int    // release of Version, e.g. 26 and 1
	minor   int

	mu         sync.Mutex
	refuse     bool
	statements []string
	asOf       []string
	faults     []*Fault
	locked     map[string]bool // table name -> schema_locked
	conns      map[*proxyConn]struct{}
	closed     bool
	wg         sync.WaitGroup
}

// StartProxy starts a proxy on a free loopback port in front of the test binary's cluster; it
// stops when the test ends. Connect through it with Proxy.URL.
func StartProxy(t testing.TB, opts ProxyOptions) *Proxy {
	t.Helper()
	c := Cluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{opts: opts, ln: ln, cluster: c.URL(), refuse: opts.RefuseFullScans,
		locked: map[string]bool{}, conns: map[*proxyConn]struct{}{}}
	if opts.Version != "" {
		m := regexp.MustCompile(`v(\d+)\.(\d+)`).FindStringSubmatch(opts.Version)
		if m == nil {
			t.Fatalf("pgtest: proxy version %q has no vX.Y", opts.Version)
		}
		p.major, _ = strconv.Atoi(m[1])
		p.minor, _ = strconv.Atoi(m[2])
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy and cuts every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// URL returns dbURL (a database of the test cluster) reached through the proxy.
func (p *Proxy) URL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// Statements returns every statement received so far, as the client sent it, in order.
func (p *Proxy) Statements() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.statements...)
}

// AsOf returns every AS OF SYSTEM TIME clause the proxy removed, in order.
func (p *Proxy) AsOf() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asOf...)
}

// ResetRecords forgets the statements and clauses recorded so far.
func (p *Proxy) ResetRecords() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.statements, p.asOf = nil, nil
}

// SetRefuseFullScans turns the refusal of full scans (of system.web_sessions and of the
// console's tables) on or off.
func (p *Proxy) SetRefuseFullScans(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = on
}

// SchemaLocked reports whether the proxy considers table (unqualified name) schema_locked.
func (p *Proxy) SchemaLocked(table string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.locked[strings.ToLower(table)]
}

// Inject arms a fault and returns it, to ask later how often it struck.
func (p *Proxy) Inject(f Fault) *Fault {
	if f.Code == "" {
		f.Code = "40001"
	}
	if f.Times <= 0 {
		f.Times = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nf := f
	p.faults = append(p.faults, &nf)
	return &nf
}

// Fired returns how often the fault struck so far.
func (p *Proxy) Fired(f *Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f.fired
}

func (p *Proxy) cockroach() bool { return p.opts.Version != "" }

func (p *Proxy) atLeast(major, minor int) bool {
	return p.major > major || p.major == major && p.minor >= minor
}

func (p *Proxy) record(sql string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.statements = append(p.statements, sql)
}

// strike reports whether f strikes now, counting it if so.
func (p *Proxy) strike(f *Fault) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.fired >= f.Times {
		return false
	}
	f.fired++
	return true
}

// armed returns the faults of a point that can still strike and match sql (any, for anySQL).
func (p *Proxy) armed(point FaultPoint, sql string) []*Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Fault
	lower := strings.ToLower(sql)
	for _, f := range p.faults {
		if f.Point == point && f.fired < f.Times && (sql == anySQL || strings.Contains(lower, strings.ToLower(f.Match))) {
			out = append(out, f)
		}
	}
	return out
}

// anySQL asks armed for every fault of a point, whatever it matches.
const anySQL = "\x00any"

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(conn)
		}()
	}
}

// sqlError is an error the proxy answers with.
type sqlError struct{ code, message, hint string }

func (e *sqlError) response() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: e.code, Message: e.message, Hint: e.hint}
}

// raiseSQL is a statement that makes PostgreSQL itself fail with e, so that its transaction
// state (aborted inside a transaction block) is what CockroachDB's would be.
func (e *sqlError) raiseSQL() string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	sql := "DO $crdbproxy$ BEGIN RAISE EXCEPTION USING ERRCODE = " + q(e.code) + ", MESSAGE = " + q(e.message)
	if e.hint != "" {
		sql += ", HINT = " + q(e.hint)
	}
	return sql + "; END $crdbproxy$"
}

func injected(f *Fault) *sqlError {
	msg := "injected by the test proxy"
	if f.Code == "40001" {
		msg = "restart transaction: TransactionRetryWithProtoRefreshError: injected by the test proxy"
	}
	return &sqlError{code: f.Code, message: msg}
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	client.SetDeadline(time.Now().Add(30 * time.Second))
	be := pgproto3.NewBackend(client, client)
	var params map[string]string
	for params == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := client.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			p.forwardCancel(m)
			return
		case *pgproto3.StartupMessage:
			params = m.Parameters
		default:
			return
		}
	}
	// The password travels to the proxy in clear (loopback only) and on to the server, which
	// checks it: the client's user and password are the upstream connection's.
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if be.Flush() != nil || be.SetAuthType(pgproto3.AuthTypeCleartextPassword) != nil {
		return
	}
	msg, err := be.Receive()
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if err != nil || !ok {
		return
	}
	cfg, err := pgconn.ParseConfig(p.cluster)
	if err != nil {
		return
	}
	cfg.User, cfg.Password, cfg.Database = params["user"], pw.Password, params["database"]
	cfg.RuntimeParams = map[string]string{}
	for k, v := range params {
		if k != "user" && k != "database" {
			cfg.RuntimeParams[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	up, err := pgconn.ConnectConfig(ctx, cfg)
	cancel()
	if err != nil {
		e := &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "08006", Message: "proxy: " + err.Error()}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			e.Code, e.Message = pe.Code, pe.Message
		}
		be.Send(e)
		be.Flush()
		return
	}
	hc, err := up.Hijack()
	if err != nil {
		return
	}
	defer hc.Conn.Close()
	client.SetDeadline(time.Time{})
	be.Send(&pgproto3.AuthenticationOk{})
	for k, v := range hc.ParameterStatuses {
		be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: hc.PID, SecretKey: hc.SecretKey})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	c := &proxyConn{p: p, client: client, be: be, up: hc.Conn, fe: hc.Frontend, txStatus: 'I',
		stmts: map[string]string{}, portals: map[string]string{}, vars: map[string]string{},
		local: map[string]string{}, saw: map[*Fault]bool{}}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.fromServer()
		c.close()
	}()
	c.fromClient()
	c.close()
	<-done
}

// forwardCancel passes a cancel request on to the server (the client got the server's key).
func (p *Proxy) forwardCancel(m *pgproto3.CancelRequest) {
	cfg, err := pgconn.ParseConfig(p.cluster)
	if err != nil {
		return
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), 5*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	buf, err := m.Encode(nil)
	if err == nil {
		conn.Write(buf)
	}
}

// proxyConn is one client connection and its server connection.
type proxyConn struct {
	p      *Proxy
	client net.Conn
	be     *pgproto3.Backend // to the client
	up     net.Conn
	fe     *pgproto3.Frontend // to the server
	upMu   sync.Mutex         // writes to the server
	once   sync.Once

	// Owned by fromClient.
	stmts   map[string]string // prepared statement -> the client's SQL
	portals map[string]string // portal -> the client's SQL
	vars    map[string]string // CockroachDB session variables set in the session
	local   map[string]string // ... and by SET LOCAL in the current transaction
	saw     map[*Fault]bool   // AtCommit faults whose statement ran in the current transaction
	failing *sqlError         // the extended-protocol batch failed: drop messages until Sync

	mu       sync.Mutex
	txStatus byte      // from the server's last ReadyForQuery
	queue    []*result // results the server will send, in order
	cut      bool      // a MidStream fault struck since the last ReadyForQuery
	hangUp   bool      // a CutAfterCommit fault struck: drop the answers, commit, hang up
}

// result is one statement's stream of rows, as the server will send it.
type result struct {
	fault *Fault // MidStream fault that may strike, or nil
	rows  int
	cut   bool
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		c.up.Close()
	})
}

func (c *proxyConn) sendUp(msgs ...pgproto3.FrontendMessage) error {
	c.upMu.Lock()
	defer c.upMu.Unlock()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	return c.fe.Flush()
}

func (c *proxyConn) push(r *result) {
	c.mu.Lock()
	c.queue = append(c.queue, r)
	c.mu.Unlock()
}

func (c *proxyConn) fromClient() {
	for {
		msg, err := c.be.Receive()
		if err != nil {
			return
		}
		c.mu.Lock()
		idle := c.txStatus == 'I'
		c.mu.Unlock()
		if idle {
			clear(c.local)
			clear(c.saw)
		}
		if c.failing != nil {
			switch msg.(type) {
			case *pgproto3.Sync:
				e := c.failing
				c.failing = nil
				c.push(&result{})
				if c.sendUp(&pgproto3.Query{String: e.raiseSQL()}) != nil {
					return
				}
			case *pgproto3.Terminate:
				c.sendUp(msg)
				return
			}
			continue // the server skips to Sync after an error; so does the proxy
		}
		var fwd pgproto3.FrontendMessage = msg
		switch m := msg.(type) {
		case *pgproto3.Query:
			c.p.record(m.String)
			sql, fault, e := c.statement(m.String)
			if e != nil {
				sql = e.raiseSQL()
				if isCommit(m.String) && !isRelease(m.String) {
					sql = "ROLLBACK; " + sql // a failed COMMIT ends the transaction
				}
			}
			c.push(&result{fault: fault})
			fwd = &pgproto3.Query{String: sql}
		case *pgproto3.Parse:
			c.p.record(m.Query)
			sql, e := c.prepare(m.Query)
			if e != nil {
				c.failing = e
				continue
			}
			c.stmts[m.Name] = m.Query
			np := *m
			np.Query = sql
			fwd = &np
		case *pgproto3.Bind:
			c.portals[m.DestinationPortal] = c.stmts[m.PreparedStatement]
		case *pgproto3.Execute:
			fault, e := c.execute(c.portals[m.Portal])
			if e != nil {
				c.failing = e
				continue
			}
			c.push(&result{fault: fault})
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				delete(c.stmts, m.Name)
			} else {
				delete(c.portals, m.Name)
			}
		}
		if c.sendUp(fwd) != nil {
			return
		}
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return
		}
	}
}

func (c *proxyConn) fromServer() {
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			return
		}
		c.mu.Lock()
		hangUp := c.hangUp
		c.mu.Unlock()
		if hangUp {
			if rfq, ok := msg.(*pgproto3.ReadyForQuery); ok && rfq.TxStatus == 'T' {
				c.commitServerTx()
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				return // serve closes both connections; the client never hears the outcome
			}
			continue
		}
		flush := false
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			c.mu.Lock()
			var r *result
			if len(c.queue) > 0 {
				r = c.queue[0]
			}
			drop := false
			if r != nil && r.fault != nil {
				switch {
				case r.cut:
					drop = true
				case r.rows >= r.fault.Rows && c.p.strike(r.fault):
					r.cut, c.cut, drop = true, true, true
				default:
					r.rows++
				}
			}
			c.mu.Unlock()
			if drop {
				continue
			}
		case *pgproto3.CommandComplete, *pgproto3.ErrorResponse, *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
			c.mu.Lock()
			var r *result
			if len(c.queue) > 0 {
				r = c.queue[0]
				c.queue = c.queue[1:]
			}
			c.mu.Unlock()
			if _, ok := msg.(*pgproto3.CommandComplete); ok && r != nil && r.cut {
				msg = injected(r.fault).response()
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); ok && e.Code == "40P01" && c.p.cockroach() {
				// CockroachDB has no deadlock error: it aborts one of the transactions in the
				// cycle with a retryable restart (40001), which is what a client must handle.
				msg = (&sqlError{code: "40001", message: "restart transaction: TransactionRetryWithProtoRefreshError: ABORT_REASON_PUSHER_ABORTED (from a PostgreSQL deadlock)"}).response()
			}
		case *pgproto3.ReadyForQuery:
			status := m.TxStatus
			c.mu.Lock()
			cut := c.cut
			c.cut, c.queue = false, nil
			c.mu.Unlock()
			if cut && status == 'T' {
				// The error the client saw aborts its transaction: abort the server's too.
				if status, err = c.abortServerTx(); err != nil {
					return
				}
			}
			c.mu.Lock()
			c.txStatus = status
			c.mu.Unlock()
			msg, flush = &pgproto3.ReadyForQuery{TxStatus: status}, true
		case *pgproto3.CopyInResponse, *pgproto3.CopyBothResponse:
			flush = true
		}
		c.be.Send(msg)
		if flush || c.fe.ReadBufferLen() == 0 {
			if c.be.Flush() != nil {
				return
			}
		}
	}
}

// commitServerTx commits the server's open transaction, as CockroachDB's RELEASE SAVEPOINT
// cockroach_restart does.
func (c *proxyConn) commitServerTx() {
	if c.sendUp(&pgproto3.Query{String: "COMMIT"}) != nil {
		return
	}
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}

// abortServerTx fails the server's open transaction and returns its status ('E').
func (c *proxyConn) abortServerTx() (byte, error) {
	e := &sqlError{code: "40001", message: "aborted by the test proxy"}
	if err := c.sendUp(&pgproto3.Query{String: e.raiseSQL()}); err != nil {
		return 0, err
	}
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			return 0, err
		}
		if rfq, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return rfq.TxStatus, nil
		}
	}
}

// statement handles a simple-protocol statement: what to forward, or the error to answer.
func (c *proxyConn) statement(sql string) (string, *Fault, *sqlError) {
	out, e := c.prepare(sql)
	if e != nil {
		return "", nil, e
	}
	fault, e := c.execute(sql)
	return out, fault, e
}

var (
	setVarRE      = regexp.MustCompile(`(?is)^\s*(set|reset)\s+(?:(session|local)\s+)?(allow_unsafe_internals|disallow_full_table_scans)\b\s*(?:(?:=|to)\s*(.*?))?\s*;?\s*$`)
	beginRE       = regexp.MustCompile(`(?is)^\s*begin(?:\s+transaction)?\s+isolation\s+level\s+serializable(.*)$`)
	versionRE     = regexp.MustCompile(`(?is)^\s*select\s+version\s*\(\s*\)\s*;?\s*$`)
	schemaLockRE  = regexp.MustCompile(`(?is)^\s*alter\s+table\s+(?:if\s+exists\s+)?(\S+)\s+(?:set\s*\(\s*schema_locked\s*=\s*(\w+)\s*\)|(reset)\s*\(\s*schema_locked\s*\))\s*;?\s*$`)
	aostRE        = regexp.MustCompile(`(?is)\s+as\s+of\s+system\s+time\s+(?:'(?:[^']|'')*'|interval\s+'(?:[^']|'')*'|-?\d+(?:\.\d+)?|[a-z_]+\s*\([^)]*\))`)
	systemRE      = regexp.MustCompile(`(?is)\bsystem\s*\.\s*["a-z_]`)
	createTableRE = regexp.MustCompile(`(?is)\bcreate\s+table\s+(?:if\s+not\s+exists\s+)?([^\s(]+)`)
	alterTableRE  = regexp.MustCompile(`(?is)\balter\s+table\s+(?:if\s+exists\s+)?([^\s(]+)`)
	commitRE      = regexp.MustCompile(`(?is)^\s*(?:commit|end)(?:\s+(?:transaction|work))?\s*;?\s*$`)
	releaseRE     = regexp.MustCompile(`(?is)^\s*release\s+(?:savepoint\s+)?cockroach_restart\s*;?\s*$`)
)

func isRelease(sql string) bool { return releaseRE.MatchString(sql) }
func isCommit(sql string) bool  { return commitRE.MatchString(sql) || isRelease(sql) }

// tableName is a table reference reduced to its last, unquoted part, lower case.
func tableName(ref string) string {
	ref = strings.TrimRight(ref, ";")
	if i := strings.LastIndex(ref, "."); i >= 0 {
		ref = ref[i+1:]
	}
	return strings.ToLower(strings.Trim(ref, `"`))
}

// setting returns the effective value of a CockroachDB session variable.
func (c *proxyConn) setting(name string) string {
	if v, ok := c.local[name]; ok {
		return v
	}
	if v, ok := c.vars[name]; ok {
		return v
	}
	switch name {
	case "allow_unsafe_internals":
		if c.p.atLeast(26, 1) {
			return "off"
		}
		return "on"
	case "disallow_full_table_scans":
		return "on" // what matters is whether the proxy was told to refuse
	}
	return ""
}

func boolSetting(v string) string {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(v), `'"`)) {
	case "on", "true", "t", "1", "yes":
		return "on"
	}
	return "off"
}

// prepare rewrites a statement for PostgreSQL and refuses what CockroachDB refuses at planning.
func (c *proxyConn) prepare(sql string) (string, *sqlError) {
	if !c.p.cockroach() {
		return sql, nil
	}
	if m := setVarRE.FindStringSubmatch(sql); m != nil {
		name := strings.ToLower(m[3])
		if name == "allow_unsafe_internals" && !c.p.atLeast(25, 4) {
			return "", &sqlError{code: "42704", message: `unrecognized configuration parameter "allow_unsafe_internals"`}
		}
		// PostgreSQL keeps a dotted custom variable with the same SET / SET LOCAL / RESET rules.
		if strings.EqualFold(m[1], "reset") {
			return "RESET crdb." + name, nil
		}
		scope := ""
		if strings.EqualFold(m[2], "local") {
			scope = "LOCAL "
		}
		return "SET " + scope + "crdb." + name + " = '" + boolSetting(m[4]) + "'", nil
	}
	if m := beginRE.FindStringSubmatch(sql); m != nil {
		// CockroachDB restarts a transaction at ROLLBACK TO SAVEPOINT cockroach_restart with a
		// new timestamp; PostgreSQL keeps its snapshot there, so a serialization failure of its
		// own SERIALIZABLE isolation would recur on every retry. Transactions therefore run at
		// PostgreSQL's default isolation (row locks still order writes), and restarts are the
		// injected faults'.
		return "BEGIN" + m[1], nil
	}
	if versionRE.MatchString(sql) {
		return "SELECT '" + strings.ReplaceAll(c.p.opts.Version, "'", "''") + "'::text AS version", nil
	}
	if m := schemaLockRE.FindStringSubmatch(sql); m != nil {
		return "ALTER TABLE " + m[1] + " RESET (fillfactor)", nil // a no-op PostgreSQL accepts
	}
	if locs := aostRE.FindAllStringIndex(sql, -1); locs != nil {
		var b strings.Builder
		last := 0
		c.p.mu.Lock()
		for _, l := range locs {
			c.p.asOf = append(c.p.asOf, strings.TrimSpace(sql[l[0]:l[1]]))
			b.WriteString(sql[last:l[0]])
			last = l[1]
		}
		c.p.mu.Unlock()
		b.WriteString(sql[last:])
		sql = b.String()
	}
	if e := c.gate(sql); e != nil {
		return "", e
	}
	return sql, nil
}

// gate refuses system.* without allow_unsafe_internals, as v26.1 does.
func (c *proxyConn) gate(sql string) *sqlError {
	if c.p.atLeast(25, 4) && systemRE.MatchString(sql) && c.setting("allow_unsafe_internals") != "on" {
		return &sqlError{code: "42501", message: "Access to crdb_internal and system is restricted.",
			hint: "These interfaces are unsupported in production. To proceed, set the session variable allow_unsafe_internals = true (not recommended), or contact Cockroach Labs for a supported alternative."}
	}
	return nil
}

// execute applies a statement's effect on the session and answers the refusals and faults that
// CockroachDB would raise when running it. It returns a MidStream fault that may strike.
func (c *proxyConn) execute(sql string) (*Fault, *sqlError) {
	c.mu.Lock()
	inTx := c.txStatus != 'I'
	c.mu.Unlock()
	if c.p.cockroach() {
		if e := c.gate(sql); e != nil {
			return nil, e
		}
		if m := setVarRE.FindStringSubmatch(sql); m != nil {
			name := strings.ToLower(m[3])
			switch {
			case strings.EqualFold(m[1], "reset"):
				delete(c.vars, name)
			case strings.EqualFold(m[2], "local"):
				if inTx {
					c.local[name] = boolSetting(m[4])
				}
			default:
				c.vars[name] = boolSetting(m[4])
			}
		}
		if e := c.schemaLocks(sql); e != nil {
			return nil, e
		}
		c.p.mu.Lock()
		refuse := c.p.refuse
		c.p.mu.Unlock()
		if e := advisoryLock(sql); e != nil {
			return nil, e
		}
		if refuse && c.setting("disallow_full_table_scans") != "off" && (ScansWebSessions(sql) || ScansConsoleTable(sql)) {
			return nil, &sqlError{code: "P0003",
				message: fmt.Sprintf("query `%s` contains a full table/index scan which is explicitly disallowed", strings.Join(strings.Fields(sql), " ")),
				hint:    "try overriding the `disallow_full_table_scans` or increasing the `large_full_scan_rows` cluster/session settings"}
		}
	}
	for _, f := range c.p.armed(AtStatement, sql) {
		if c.p.strike(f) {
			return nil, injected(f)
		}
	}
	if isCommit(sql) {
		for _, f := range c.p.armed(AtCommit, anySQL) {
			if c.saw[f] && c.p.strike(f) {
				return nil, injected(f)
			}
		}
		for _, f := range c.p.armed(CutAfterCommit, anySQL) {
			if c.saw[f] && c.p.strike(f) {
				c.mu.Lock()
				c.hangUp = true
				c.mu.Unlock()
				break
			}
		}
	} else if inTx {
		for _, f := range append(c.p.armed(AtCommit, sql), c.p.armed(CutAfterCommit, sql)...) {
			c.saw[f] = true
		}
	}
	if fs := c.p.armed(MidStream, sql); len(fs) > 0 {
		return fs[0], nil
	}
	return nil, nil
}

// schemaLocks follows schema_locked: tables created from v26.1 on are locked; SET/RESET
// (schema_locked) changes that; any other ALTER TABLE of a locked table is refused.
func (c *proxyConn) schemaLocks(sql string) *sqlError {
	if !c.p.atLeast(26, 1) {
		return nil
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if m := schemaLockRE.FindStringSubmatch(sql); m != nil {
		c.p.locked[tableName(m[1])] = m[3] == "" && boolSetting(m[2]) == "on"
		return nil
	}
	for _, m := range alterTableRE.FindAllStringSubmatch(sql, -1) {
		if name := tableName(m[1]); c.p.locked[name] {
			return &sqlError{code: "57000", message: fmt.Sprintf("schema changes are disallowed on table %q because it is locked", name),
				hint: fmt.Sprintf("To unlock the table, try \"ALTER TABLE %s SET (schema_locked = false);\" \nAfter schema change completes, we recommend setting it back to true with \"ALTER TABLE %s SET (schema_locked = true);\"", name, name)}
		}
	}
	for _, m := range createTableRE.FindAllStringSubmatch(sql, -1) {
		if name := tableName(m[1]); !strings.HasPrefix(strings.ToLower(m[1]), "system.") {
			if _, known := c.p.locked[name]; !known {
				c.p.locked[name] = true
			}
		}
	}
	return nil
}

var (
	whereRE    = regexp.MustCompile(`(?is)\bwhere\b(.*?)(?:\breturning\b|\border\s+by\b|\blimit\b|$)`)
	limitRE    = regexp.MustCompile(`(?is)\blimit\b`)
	usernameRE = regexp.MustCompile(`(?is)\busername\b`)
	insertRE   = regexp.MustCompile(`(?is)^\s*insert\b`)
	webSessRE  = regexp.MustCompile(`(?is)\bsystem\.web_sessions\b`)
	// byKeyRE: the rows are looked up by primary key (id = $1, id = ANY($1)), not scanned.
	byKeyRE = regexp.MustCompile(`(?is)(?:^|[^\w."])id\s*=\s*(?:any\s*\(\s*)?\$[0-9]`)
	// activeRangeRE: the rows are a range of the expiresAt index ("expiresAt" > $1, the
	// active sessions), which CockroachDB's coster prefers to a full scan when full scans are
	// disallowed (cockroach#71317, v21.2+).
	activeRangeRE = regexp.MustCompile(`(?is)(?:^|[^\w.])"expiresAt"\s*>\s*\$[0-9]`)
)

// ScansWebSessions reports whether CockroachDB must read all of system.web_sessions to run
// sql: the table's only secondary indexes are on expiresAt, createdAt, revokedAt and lastUsedAt,
// so a predicate on username cannot use an index, and a read with neither a WHERE nor a LIMIT
// reads every row. Inserts, lookups by id and reads of the active sessions (a range of the
// expiresAt index) do not scan. This is the proxy's model of CockroachDB's planner for the
// console's own statements, not a general one.
func ScansWebSessions(sql string) bool {
	loc := webSessRE.FindStringIndex(sql)
	if loc == nil || insertRE.MatchString(sql) {
		return false
	}
	tail := sql[loc[1]:]
	w := whereRE.FindStringSubmatch(tail)
	if w == nil {
		return !limitRE.MatchString(tail)
	}
	if byKeyRE.MatchString(w[1]) || activeRangeRE.MatchString(w[1]) {
		return false
	}
	return usernameRE.MatchString(w[1])
}

var (
	consoleTableRE = regexp.MustCompile(`(?is)\b(?:from|join|update)\s+"?console"?\s*\.\s*"?[a-z_]+"?`)
	dmlRE          = regexp.MustCompile(`(?is)^\s*(?:select|update|delete|with)\b`)
	advisoryRE     = regexp.MustCompile(`(?is)\bpg_(?:try_)?advisory_\w*\s*\(`)
)

// ScansConsoleTable reports whether sql reads all of a table of the console's own schema: a
// read, update or delete naming console.<table> with neither a WHERE nor a LIMIT after it. The
// console's statements with a WHERE on these tables use their primary keys or indexes. A
// cluster that disallows full scans refuses such a read of a small table too while the table
// has no statistics (a new one), so the console must turn the guard off for them.
func ScansConsoleTable(sql string) bool {
	if !dmlRE.MatchString(sql) {
		return false
	}
	for _, loc := range consoleTableRE.FindAllStringIndex(sql, -1) {
		tail := sql[loc[1]:]
		if whereRE.FindStringIndex(tail) == nil && !limitRE.MatchString(tail) {
			return true
		}
	}
	return false
}

// advisoryLock refuses PostgreSQL's advisory lock functions: CockroachDB has no advisory locks
// (pg_try_advisory_lock and pg_advisory_unlock are stubs that always answer true, per
// pkg/sql/sem/builtins/pg_builtins.go; the others do not exist), so a console that relied on
// them there would lock nothing. The proxy fails the statement so that tests notice.
func advisoryLock(sql string) *sqlError {
	if m := advisoryRE.FindString(sql); m != "" {
		return &sqlError{code: "0A000", message: "the test proxy refuses " + strings.TrimRight(m, " (") +
			": CockroachDB has no advisory locks (its pg_try_advisory_lock always answers true)"}
	}
	return nil
}
