package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/sessionconsole/console/internal/connflags"
)

// Errors of the auth-session commands print as cockroach's CLI prints them (pkg/cli/cli.go Main
// and pkg/cli/clierror OutputError), so that scripts written for `cockroach auth-session` read
// them the same way:
//
//	ERROR: user "nobody" does not exist
//	Failed running "auth-session login"
//
// A server error adds its SQLSTATE, DETAIL, CONSTRAINT and HINT lines; a flag error prints the
// command's usage first and exits with status 4 (cockroach's CommandLineFlagError), any other
// error with status 1. The other commands print "console: <message>" and exit with status 1.

// flagError is a command-line flag that could not be parsed.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// hintError adds a HINT line to an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// usageError is a wrong command line caught by a command's argument check. Its message does not
// repeat the command, which the cockroach style names on its own line.
type usageError struct {
	path string // "auth-session login"
	msg  string
}

func (e *usageError) Error() string { return e.path + ": " + e.msg }

// Exit statuses, as cockroach's.
const (
	exitFailure   = 1 // cockroach's UnspecifiedError
	exitFlagError = 4 // cockroach's CommandLineFlagError
)

// cockroachStyle reports whether cmd's errors print as cockroach's: the auth-session commands.
func cockroachStyle(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		if c.Name() == "auth-session" && c.HasParent() && !c.Parent().HasParent() {
			return true
		}
	}
	return false
}

// cockroachFlagErrorFunc prints the usage before a flag error, as cockroach does.
func cockroachFlagErrorFunc(c *cobra.Command, err error) error {
	c.Usage()
	fmt.Fprintln(c.ErrOrStderr())
	return &flagError{connflags.RedactFlagError(err)}
}

// flagErrorFunc is the other commands' flag error: the error alone, without a --url value.
func flagErrorFunc(_ *cobra.Command, err error) error {
	return &flagError{connflags.RedactFlagError(err)}
}

// reportError prints err for the command cmd (as found for the command line) and returns the
// exit status.
func reportError(w io.Writer, root, cmd *cobra.Command, err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if cmd == nil || !cockroachStyle(cmd) {
		msg := err.Error()
		var he *hintError
		if errors.As(err, &he) {
			msg += " (" + he.hint + ")"
		}
		fmt.Fprintln(w, "console: "+msg)
		return exitFailure
	}
	fmt.Fprintln(w, formatCockroachError(err))
	fmt.Fprintf(w, "Failed running %q\n", strings.TrimPrefix(cmd.CommandPath(), root.Name()+" "))
	var fe *flagError
	if errors.As(err, &fe) {
		return exitFlagError
	}
	return exitFailure
}

// formatCockroachError renders err as cockroach's OutputError does with the severity shown and
// without verbosity: "SEVERITY: message", then SQLSTATE (left out for no code or XXUUU), DETAIL,
// CONSTRAINT and HINT lines. A server error wrapped in the console's own context keeps that
// context; the server's part of the text is its message alone.
func formatCockroachError(err error) string {
	severity, msg := "ERROR", err.Error()
	var ue *usageError
	if errors.As(err, &ue) {
		msg = ue.msg
	}
	var code, detail, constraint, hint string
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Severity != "" {
			severity = pgErr.Severity
		}
		if pgText := pgErr.Error(); strings.Contains(msg, pgText) {
			msg = strings.Replace(msg, pgText, pgErr.Message, 1)
		}
		code, detail, constraint, hint = pgErr.Code, pgErr.Detail, pgErr.ConstraintName, pgErr.Hint
	}
	var he *hintError
	if errors.As(err, &he) {
		hint = he.hint
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", severity, msg)
	if code != "" && code != "XXUUU" && severity != "NOTICE" {
		fmt.Fprintf(&b, "\nSQLSTATE: %s", code)
	}
	if detail != "" {
		fmt.Fprintf(&b, "\nDETAIL: %s", detail)
	}
	if constraint != "" {
		fmt.Fprintf(&b, "\nCONSTRAINT: %s", constraint)
	}
	if hint != "" {
		fmt.Fprintf(&b, "\nHINT: %s", hint)
	}
	return b.String()
}
