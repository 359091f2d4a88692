package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/sessionconsole/console/internal/connflags"
	"github.com/sessionconsole/console/internal/pgdb"
	"github.com/sessionconsole/console/internal/pgembed"
)

// databaseURL returns the URL to connect to: where the connection flags say, or, when none is
// given, the embedded PostgreSQL in --data-dir, which it starts (or attaches to) and records in
// a for Close.
func (g *globalFlags) databaseURL(ctx context.Context, a *app, o openOptions) (string, error) {
	if g.conn.Given() {
		t, err := g.conn.Resolve()
		if err != nil {
			return "", err
		}
		g.target = t
		return t.URL, nil
	}
	c, err := pgembed.Start(ctx, pgembed.Options{DataDir: g.dataDir, Supervise: o.supervise, Logger: o.log})
	if err != nil {
		return "", err
	}
	a.cluster = c
	return c.URL(), nil
}

// databaseName describes the database in use, without secrets, for serve's start-up line.
func databaseName(g *globalFlags) string {
	if !g.conn.Given() {
		abs, _ := filepath.Abs(g.dataDir)
		return "embedded PostgreSQL in " + abs
	}
	t, err := g.conn.Resolve()
	if err != nil {
		return "connection flags"
	}
	return t.Display
}

// openErr presents a failure to open the database on one line (connection errors list their
// attempts on several), says plainly when the server did not answer the way PostgreSQL and
// CockroachDB do (an HTTP server, say, or nothing answering at all), and adds a hint for the
// usual TLS mistakes. pgx reports those as text only, so they are recognised by their text.
func (g *globalFlags) openErr(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if !g.conn.Given() || !errors.Is(err, pgdb.ErrUnavailable) {
		return &shownError{msg: msg, err: err}
	}
	for _, s := range []string{"expected at most", "unexpected", "deadline exceeded", "timeout", "EOF"} {
		if strings.Contains(msg, s) {
			msg += " (the server did not answer as PostgreSQL or CockroachDB would: are the URL, host and port right?)"
			break
		}
	}
	shown := &shownError{msg: msg, err: err}
	if hint := tlsHint(msg, g.target); hint != "" {
		return &hintError{err: shown, hint: hint}
	}
	return shown
}

// tlsHint explains a TLS or certificate failure of a connection to t.
func tlsHint(msg string, t *connflags.Target) string {
	if t == nil {
		return ""
	}
	switch {
	case strings.Contains(msg, "server refused TLS connection"):
		return "the server does not accept TLS connections; --insecure connects without TLS (only on a network you trust)"
	case strings.Contains(msg, "no encryption") && t.Insecure != "":
		return "the server accepts only TLS connections here; leave out " + t.Insecure
	case strings.Contains(msg, "certificate signed by unknown authority"):
		if t.CA != "" {
			return "the server's certificate is not signed by the CA in " + t.CA
		}
		return "the server's certificate is not signed by a CA this system trusts; put its CA in the --certs-dir directory as ca.crt"
	case strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "certificate is not valid for any names"):
		return "the server's certificate does not name the host connected to; use the host name it was issued for"
	case strings.Contains(msg, "requires a valid client certificate") || strings.Contains(msg, "certificate authentication failed"):
		if t.ClientCert == "" && t.WantedCert != "" {
			return "no client certificate was presented: " + t.WantedCert + " and its key were not found"
		}
		if t.ClientCert != "" {
			return "the server did not accept the client certificate " + t.ClientCert + " (its common name must be the user)"
		}
	}
	return ""
}
