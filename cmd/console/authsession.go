package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/policy"
	"github.com/sessionconsole/console/sessionstore"
)

func newAuthSessionCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth-session",
		Short: "Issue, revoke and list HTTP authentication sessions",
		Long: `auth-session creates and manages HTTP authentication sessions (web sessions) from the
command line, as cockroach auth-session does:

  login   issues a session for a user and prints its cookie, for curl, wget or any other
          HTTP tool (the user must exist and may be root);
  logout  revokes every session of a user;
  list    lists every session: active, expired and revoked, until they are purged.

On CockroachDB the sessions are the cluster's own (system.web_sessions); on PostgreSQL they live
in the console's table (console.web_sessions). The standard SQL connection flags say where:
--url, or --host, --port, --user, --database, --certs-dir and --insecure (and their COCKROACH_*
variables), as for cockroach; without any of them the embedded PostgreSQL in --data-dir is used.

Errors print as cockroach prints them: "ERROR: <message>", then
"Failed running "auth-session <command>"", on standard error.`,
		Example: `  console auth-session login web_user
  console auth-session login web_user --expire-after=4h30m
  console auth-session login web_user --only-cookie > $HOME/.session_cookie
  console auth-session logout web_user
  console auth-session list`,
		RunE: usageAndErr,
	}
	cmd.SetFlagErrorFunc(cockroachFlagErrorFunc)
	cmd.AddCommand(newLoginCmd(g), newLogoutCmd(g), newListCmd(g))
	return cmd
}

// usageAndErr is cockroach's answer to a command group called without (or with an unknown)
// subcommand: the usage on standard error, then the error `unknown sub-command: "<args>"`.
func usageAndErr(cmd *cobra.Command, args []string) error {
	if err := cmd.Usage(); err != nil {
		return err
	}
	return fmt.Errorf("unknown sub-command: %q", strings.Join(args, " "))
}

// parentRunE makes a command group print its help when called alone and refuse unknown
// subcommands (cobra would print the help and succeed).
func parentRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return errors.New(msg)
}

// exactArgs accepts exactly the named positional arguments, with a one-line usage error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return &usageError{subcommandPath(cmd), fmt.Sprintf("missing %s argument (usage: %s)", names[len(args)], cmd.UseLine())}
		case len(args) > len(names):
			return &usageError{subcommandPath(cmd), fmt.Sprintf("unexpected argument %q (usage: %s)", args[len(names)], cmd.UseLine())}
		}
		return nil
	}
}

// subcommandPath is the command's path without the program name, which main already prints
// in front of every error: "auth-session login".
func subcommandPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

const loginExample = `  # A session of the default length (1 hour) for web_user, printed as a table:
  console auth-session login web_user

  # A session that expires after 4 hours and 30 minutes:
  console auth-session login web_user --expire-after=4h30m

  # With the reason, for the audit log and the session's auditInfo:
  console auth-session login root --expire-after=15m --reason "restore test, ticket 42"

  # Only the cookie, for other tools:
  console auth-session login web_user --only-cookie > $HOME/.session_cookie
  curl --cookie "$(cat $HOME/.session_cookie)" https://localhost:8080/_status/logfiles/local`

func newLoginCmd(g *globalFlags) *cobra.Command {
	var (
		expireAfter = expiryFlag{text: "1h", d: time.Hour}
		onlyCookie  bool
		format      string
		clusterURL  string
		reason      string
	)
	cmd := &cobra.Command{
		Use:   "login USER",
		Short: "Issue an HTTP session for a user and print its cookie",
		Long: `login creates a new HTTP authentication session for USER and prints the user, the session ID
and the authentication cookie, which curl --cookie, wget --header or any HTTP tool can present.
No password is needed: whoever can run this command against the database can log in as any
existing user, root included. The user must exist and be able to log in (CockroachDB: a user,
not a role; PostgreSQL: a role with LOGIN); otherwise login fails with
  user "NAME" does not exist
On CockroachDB the name is normalized as SQL normalizes identifiers (lower-cased, NFC).

--expire-after is stricter than cockroach's on purpose: hours, minutes and seconds only (h, m,
s, e.g. 30m or 4h30m), at least 1s and at most --max-expire-after (default 744h, 31 days), a
guard against the arbitrary lifetimes CockroachDB's documentation warns about. Raise the cap
with --max-expire-after when a longer session is really needed.

The cookie is shown only here: the database keeps a hash of its secret. When standard input
is a terminal, examples of curl and wget commands using the cookie are printed on standard
error, pointing at --cluster-url when it is set. Each login is recorded in the console's audit
log (without the cookie), with --reason if given, and the session's auditInfo says where it came
from: "cli <os user>: <reason>".`,
		Example: loginExample,
		Args:    exactArgs("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			ttl := expireAfter.d
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.sessions.CheckTTL(ttl); err != nil {
					return &hintError{
						err:  fmt.Errorf("invalid --expire-after %q: %s", expireAfter.text, strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")),
						hint: "--max-expire-after (now " + sessionstore.FormatDuration(g.maxTTL) + ") is the longest expiry login grants; raise it for longer sessions",
					}
				}
				iss, err := a.actions.Issue(ctx, cliBy(), actions.IssueRequest{User: args[0], TTL: ttl,
					Note: actions.Note{Reason: reason, Detail: "auth-session login --expire-after=" + sessionstore.FormatDuration(ttl)}})
				switch {
				case errors.Is(err, actions.ErrReasonRequired):
					return errors.New(`a reason is required: give one with --reason "..." (the console runs with --require-reason)`)
				case errors.Is(err, actions.ErrBadReason):
					return fmt.Errorf("--reason: %s", strings.TrimPrefix(err.Error(), actions.ErrBadReason.Error()+": "))
				case err != nil:
					return err
				}
				cookie := iss.Cookie.SetCookie()
				out := cmd.OutOrStdout()
				if onlyCookie {
					_, err := fmt.Fprintln(out, cookie)
					return outputErr(err)
				}
				w, err := output.NewWriter(out, f, []output.Column{
					{Name: "username"}, {Name: "session ID"}, {Name: "authentication cookie"},
				})
				if err != nil {
					return err
				}
				if err := w.Row(iss.Username, strconv.FormatInt(iss.ID, 10), cookie); err != nil {
					return err
				}
				if err := w.Close(); err != nil {
					return outputErr(err)
				}
				if term.IsTerminal(int(os.Stdin.Fd())) {
					printCookieHint(cmd.ErrOrStderr(), cookie, clusterURL)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.Var(&expireAfter, "expire-after",
		"how long the session lasts: hours, minutes and seconds only (h, m, s), e.g. 30m or 4h30m; at least 1s and at most --max-expire-after (stricter than cockroach on purpose)")
	fl.BoolVar(&onlyCookie, "only-cookie", false, "print only the cookie, for other commands")
	fl.StringVar(&reason, "reason", "",
		`why the session is issued, one line ("restore test for ticket 42"): recorded in the audit log and in the session's auditInfo ("cli <os user>: <reason>"); required with --require-reason`)
	fl.StringVar(&clusterURL, "cluster-url", os.Getenv("CONSOLE_CLUSTER_URL"),
		"the cluster's HTTP address (e.g. https://crdb.example:8080) for the curl and wget examples printed on a terminal [env CONSOLE_CLUSTER_URL]")
	addFormatFlag(cmd, &format)
	return cmd
}

// printCookieHint shows how to use the cookie on the terminal's stderr, in the words of
// cockroach's auth-session login; the URLs point at clusterURL when one is configured.
func printCookieHint(w io.Writer, cookie, clusterURL string) {
	target := "https://..."
	if clusterURL != "" {
		target = strings.TrimRight(clusterURL, "/") + "/..."
	}
	fmt.Fprintf(w, `#
# Example uses:
#
#     curl [-k] --cookie '%[1]s' %[2]s
#
#     wget [--no-check-certificate] --header='Cookie: %[1]s' %[2]s
#
`, cookie, target)
}

// expiryFlag is --expire-after, checked against the console's duration syntax as the command
// line is parsed (cockroach reports a bad duration as a flag error too).
type expiryFlag struct {
	text string
	d    time.Duration
}

func (e *expiryFlag) String() string { return e.text }
func (e *expiryFlag) Type() string   { return "string" }
func (e *expiryFlag) Set(s string) error {
	d, err := sessionstore.ParseExpiry(s)
	var ee *sessionstore.ExpiryError
	if errors.As(err, &ee) {
		return errors.New(ee.Reason)
	}
	if err != nil {
		return err
	}
	e.text, e.d = s, d
	return nil
}

const logoutExample = `  console auth-session logout web_user
  console auth-session logout --rule idle --policy-idle 72h --dry-run
  console auth-session logout --rule max-lifetime --policy-max-lifetime 720h
  console auth-session logout --user svc_ --prefix --created-before 2026-11-01 --format=csv`

// logoutFilterFlags are the flags that turn logout into a filtered, bulk logout.
var logoutFilterFlags = []string{"rule", "user", "prefix", "status", "id", "created-after", "created-before",
	"expires-after", "expires-before", "used-after", "used-before", "dry-run"}

func newLogoutCmd(g *globalFlags) *cobra.Command {
	var format, rule string
	var dryRun bool
	var lf listFilters
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "logout USER",
		Short: "Revoke every HTTP session of a user, or the sessions matching filters",
		Long: `logout revokes all HTTP authentication sessions of USER and prints them: username, session ID
and revocation time. A session revoked before keeps its earlier revocation time, so the output
also lists sessions that were already revoked (or expired) but not purged yet. An unknown user
is not an error: there is nothing to revoke, and, as cockroach does for an UPDATE that returns
no rows, the output is its tag, UPDATE 0. Single sessions cannot be revoked here (the web
console can); use a short --expire-after instead.

With filters (for scripts), logout revokes instead every session not revoked yet that matches
them when it starts (a session issued or starting to match later is left alone), in batches,
and prints those sessions: username, session ID, created and expires (when none matched, the
tag UPDATE 0, as cockroach prints an UPDATE without rows); USER is then optional. The filters
are list's (--user with --prefix, or USER; --status; --id; created, expires and last-used
ranges) and --rule NAME, the sessions breaking a policy rule
(max-lifetime, idle, orphans, root), enabled by the same --policy-* flags as serve's (or their
CONSOLE_POLICY_* variables). --dry-run prints what it would revoke (the tag
"DRY RUN: would revoke 0" when nothing), and changes nothing.

Each logout is recorded in the console's audit log with the number of sessions it revoked
(a filtered one in one row per batch of --policy-batch sessions, action bulk-revoke).`,
		Example: logoutExample,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			filtered := slices.ContainsFunc(logoutFilterFlags, func(n string) bool { return cmd.Flags().Changed(n) })
			if !filtered {
				if err := exactArgs("USER")(cmd, args); err != nil {
					return err
				}
				return g.withApp(cmd, func(ctx context.Context, a *app) error { return logoutUser(ctx, cmd, a, args[0], f) })
			}
			if len(args) == 1 {
				if lf.user != "" {
					return &usageError{subcommandPath(cmd), "give the user as USER or as --user, not both"}
				}
				lf.user = args[0]
			}
			filter, err := lf.filter()
			if err != nil {
				return err
			}
			cfg, err := pf.config()
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				return logoutMatching(ctx, cmd, a, filter, rule, cfg, dryRun, f)
			})
		},
	}
	addFormatFlag(cmd, &format)
	fl := cmd.Flags()
	lf.registerLive(fl)
	fl.StringVar(&rule, "rule", "", "only the active sessions breaking this policy rule: max-lifetime, idle, orphans or root (enable it with its --policy-* flag)")
	fl.BoolVar(&dryRun, "dry-run", false, "with filters: print what would be revoked, and revoke nothing")
	pf.register(fl, false)
	fl.IntVar(&pf.cfg.Batch, "policy-batch", actions.DefaultBulkBatch, "how many sessions one transaction revokes")
	return cmd
}

// logoutUser is cockroach's logout USER.
func logoutUser(ctx context.Context, cmd *cobra.Command, a *app, user string, f output.Format) error {
	revs, err := a.actions.RevokeUser(ctx, cliBy(), user, actions.Note{Detail: "auth-session logout"})
	if err != nil {
		return err
	}
	slices.SortFunc(revs, func(x, y sessionstore.Revocation) int { return cmp.Compare(x.ID, y.ID) })
	w, err := output.NewWriter(cmd.OutOrStdout(), f, []output.Column{
		{Name: "username", Align: output.AlignLeft},
		{Name: "session ID", Align: output.AlignRight},
		{Name: "revoked"},
	})
	if err != nil {
		return err
	}
	for _, r := range revs {
		if err := w.Row(r.Username, strconv.FormatInt(r.ID, 10), output.Timestamp(r.RevokedAt)); err != nil {
			return outputErr(err)
		}
	}
	// An UPDATE that returned no rows prints its tag, as in cockroach.
	return outputErr(w.CloseTag(fmt.Sprintf("UPDATE %d", len(revs))))
}

// logoutMatching revokes (or with dryRun lists) the sessions matching filter and rule now.
func logoutMatching(ctx context.Context, cmd *cobra.Command, a *app, filter sessionstore.Filter, rule string,
	cfg policy.Config, dryRun bool, f output.Format) error {
	detail := "auth-session logout " + strings.Join(cliFilterArgs(cmd), " ")
	if rule != "" {
		r, err := policy.ParseRule(rule)
		if err != nil {
			return fmt.Errorf("--rule: %s", userMessage(err))
		}
		rf, err := policy.New(a.sessions, a.history, cfg).Filter(r)
		if err != nil {
			return fmt.Errorf("--rule: %s", userMessage(err))
		}
		filter.Cond = rf.Cond
		if filter.Status == "" || filter.Status == sessionstore.StatusAll {
			filter.Status = sessionstore.StatusActive
		}
	}
	filter.At = time.Now().UTC()
	filter.Sort, filter.Desc = sessionstore.SortID, false
	var matched []sessionstore.Session
	err := a.sessions.Each(ctx, filter, func(s sessionstore.Session) error {
		if s.RevokedAt != nil {
			return nil
		}
		if len(matched) == sessionstore.DefaultMaxBulk {
			return fmt.Errorf("%w: more than %d sessions match; narrow the filters", sessionstore.ErrTooMany, sessionstore.DefaultMaxBulk)
		}
		matched = append(matched, s)
		return nil
	})
	if err != nil {
		return err
	}
	tag := "DRY RUN: would revoke 0" // printed only when no row is
	if !dryRun && len(matched) > 0 {
		ids := make([]int64, len(matched))
		for i, s := range matched {
			ids[i] = s.ID
		}
		// Exactly what was listed, as long as it still matches (judged at the same moment).
		res, err := a.actions.RevokeBulk(ctx, cliBy(), actions.Bulk{IDs: ids, Filter: filter, Rule: rule,
			Batch: cfg.Batch, Note: actions.Note{Detail: detail}})
		if err != nil {
			return err
		}
		tag = fmt.Sprintf("UPDATE %d", res.Revoked)
	} else if !dryRun {
		tag = "UPDATE 0"
	}
	w, err := output.NewWriter(cmd.OutOrStdout(), f, []output.Column{
		{Name: "username", Align: output.AlignLeft},
		{Name: "session ID", Align: output.AlignRight},
		{Name: "created"},
		{Name: "expires"},
	})
	if err != nil {
		return err
	}
	for _, s := range matched {
		if err := w.Row(s.Username, strconv.FormatInt(s.ID, 10), output.Timestamp(s.CreatedAt), output.Timestamp(s.ExpiresAt)); err != nil {
			return outputErr(err)
		}
	}
	return outputErr(w.CloseTag(tag))
}

// cliFilterArgs are the filter flags given, as the audit detail records them.
func cliFilterArgs(cmd *cobra.Command) []string {
	var out []string
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if slices.Contains(logoutFilterFlags, fl.Name) || strings.HasPrefix(fl.Name, "policy-") {
			out = append(out, "--"+fl.Name+"="+fl.Value.String())
		}
	})
	return out
}

const listExample = `  console auth-session list
  console auth-session list --format=csv > sessions.csv
  console auth-session list --user root --created-after 2026-11-03 --created-before 2026-11-04
  console auth-session list --history --purged yes --user root`

func newListCmd(g *globalFlags) *cobra.Command {
	var format string
	var lf listFilters
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every HTTP session",
		Long: `list prints every HTTP authentication session, in session ID order: username, session ID,
created, expires, revoked (NULL while not revoked) and last used. It shows active sessions and
also expired and revoked ones until they are purged. Times are UTC.

The filters are the web console's: --user (with --prefix), --status, --id, and created,
expires and last-used ranges (--created-after, --created-before, ...: after is inclusive,
before exclusive, UTC dates or date-times). --history lists the console's own history
instead, which keeps sessions after the table purges them, with a "purged" column (when the
console saw the session leave the table; NULL while it is still there).

Rows are streamed: the csv, tsv, json, ndjson and records formats print each row as it is read,
so listing a large table takes little memory (the table format has to see every row first).`,
		Example: listExample,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			filter, err := lf.filter()
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				bw := bufio.NewWriterSize(cmd.OutOrStdout(), 32<<10)
				cols := output.ListColumns
				if lf.history {
					cols = output.HistoryColumns
				}
				w, err := output.NewWriter(bw, f, cols)
				if err != nil {
					return err
				}
				err = a.sessions.Each(ctx, filter, func(s sessionstore.Session) error {
					row := output.ListRow(s.Username, s.ID, s.CreatedAt, s.ExpiresAt, s.RevokedAt, s.LastUsedAt)
					if lf.history {
						row = append(row, output.NullableTimestamp(s.PurgedAt))
					}
					return w.Row(row...)
				})
				if err != nil {
					bw.Flush()
					return outputErr(err)
				}
				if err := w.Close(); err != nil {
					return outputErr(err)
				}
				return outputErr(bw.Flush())
			})
		},
	}
	addFormatFlag(cmd, &format)
	lf.register(cmd.Flags())
	return cmd
}

// addFormatFlag adds --format, checked as the command line is parsed (as cockroach's). Its
// default, "", means table on a terminal and tsv otherwise.
func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().Var((*formatFlag)(format), "format",
		"output format: "+output.FormatNames()+" (default: table when standard output is a terminal, tsv otherwise)")
}

// formatFlag is --format: a format name, or "" for the default.
type formatFlag string

func (f *formatFlag) String() string { return string(*f) }
func (f *formatFlag) Type() string   { return "string" }
func (f *formatFlag) Set(s string) error {
	if _, err := output.ParseFormat(s); err != nil {
		return err
	}
	*f = formatFlag(s)
	return nil
}

// resolveFormat parses --format, choosing the default for "".
func resolveFormat(s string) (output.Format, error) {
	if s == "" {
		return output.DefaultFormat(term.IsTerminal(int(os.Stdout.Fd()))), nil
	}
	return output.ParseFormat(s)
}

// ignoreSIGPIPE makes writes to a closed pipe fail with EPIPE instead of killing the process,
// so that a command whose output is cut short (console auth-session list | head) still leaves
// the embedded server cleanly. Every command of this package calls it first.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }

// outputErr turns a write to a closed pipe into a quiet failure; other errors pass.
func outputErr(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return &exitError{code: 1}
	}
	return err
}

// shownError replaces an error's text, keeping it for errors.Is and errors.As.
type shownError struct {
	msg string
	err error
}

func (e *shownError) Error() string { return e.msg }
func (e *shownError) Unwrap() error { return e.err }

// withApp runs fn with the database open (the embedded server attached or started, the stores
// opened), closing it afterwards; a close error is reported unless fn failed first.
func (g *globalFlags) withApp(cmd *cobra.Command, fn func(ctx context.Context, a *app) error) (err error) {
	ignoreSIGPIPE()
	ctx := cmd.Context()
	a, err := g.openApp(ctx, openOptions{maxConns: 2})
	if err != nil {
		return g.openErr(err)
	}
	defer closeApp(a, &err)
	return fn(ctx, a)
}

// closeApp closes a and reports its error through *err unless an error is already there.
func closeApp(a *app, err *error) {
	if cerr := a.Close(); *err == nil && cerr != nil {
		*err = cerr
	}
}
