// Command console is the session console: a web console and a command line for CockroachDB's
// HTTP authentication sessions (system.web_sessions), also on plain PostgreSQL, by default on an
// embedded local PostgreSQL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	// The command the arguments name, for error messages (as cockroach finds it).
	cmd, _, _ := root.Find(os.Args[1:])
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(reportError(os.Stderr, root, cmd, err))
	}
}

// exitError ends the process with a code after its message has been printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
