package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/spf13/cobra"

	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/pgdb"
)

func newSQLCmd(g *globalFlags) *cobra.Command {
	var (
		execute []string
		format  string
	)
	cmd := &cobra.Command{
		Use:   "sql [-e STATEMENT]...",
		Short: "Run SQL statements against the console's database",
		Long: `sql runs SQL statements against the database, as cockroach sql -e does: on --url, or on the
embedded PostgreSQL in --data-dir. For instance, on the embedded database, create the user a
session is for before auth-session login.

Each -e runs as one query; several statements in one -e (separated by ';') run together, in
one implicit transaction. Without -e, statements are read from standard input: a statement
ends with a ';' at the end of a line (so it may span lines), or at the end of the input; lines
holding only a '--' comment between statements are skipped. Statements run as they are read,
one after the other, on one connection; the first error stops the command.

A statement that returns rows prints them in the --format (values as text, NULL as NULL,
TIMESTAMP as 2006-01-02 15:04:05.999999); any other prints its command tag, e.g. CREATE ROLE.`,
		Example: `  console sql -e "CREATE USER web_user"
  console auth-session login web_user

  console sql -e "SELECT rolname FROM pg_roles WHERE rolcanlogin" --format=csv
  console sql < setup.sql`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ignoreSIGPIPE()
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := g.openDB(ctx)
			if err != nil {
				return g.openErr(err)
			}
			defer closeApp(a, &err)
			conn, err := a.pool.Acquire(ctx)
			if err != nil {
				return pgdb.Unavailable(err)
			}
			defer conn.Release()
			bw := bufio.NewWriterSize(cmd.OutOrStdout(), 32<<10)
			run := func(stmt string) error {
				err := runSQL(ctx, conn.Conn().PgConn(), stmt, bw, f)
				if ferr := bw.Flush(); err == nil {
					err = ferr
				}
				return outputErr(err)
			}
			if len(execute) > 0 {
				for _, stmt := range execute {
					if err := run(stmt); err != nil {
						return err
					}
				}
				return nil
			}
			return splitStatements(ctx, os.Stdin, run)
		},
	}
	cmd.Flags().StringArrayVarP(&execute, "execute", "e", nil, "a statement to run (repeatable); without -e, statements are read from standard input")
	addFormatFlag(cmd, &format)
	return cmd
}

// openDB connects to the database like openApp but opens none of the stores (so it migrates
// nothing and works on any PostgreSQL or CockroachDB database): the sql command only needs a
// connection. It still refuses a server that is neither.
func (g *globalFlags) openDB(ctx context.Context) (*app, error) {
	a := &app{}
	url, err := g.databaseURL(ctx, a, openOptions{})
	if err != nil {
		return nil, err
	}
	pool, err := pgdb.Connect(ctx, url, pgdb.Config{MaxConns: 2})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.pool = pool
	if a.flavor, _, err = pgdb.Detect(ctx, pool); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// splitStatements reads statements from r and calls run for each, stopping at its first error.
// A statement ends with ';' at the end of a line, or at the end of the input. An interrupt
// (ctx done) stops it even while it waits for input.
func splitStatements(ctx context.Context, r io.Reader, run func(string) error) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	var stmt strings.Builder
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			break
		}
		trimmed := strings.TrimSpace(line)
		if stmt.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "--")) {
			continue
		}
		stmt.WriteString(line)
		stmt.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if err := run(stmt.String()); err != nil {
				return err
			}
			stmt.Reset()
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("read statements from standard input: %w", err)
	}
	if strings.TrimSpace(stmt.String()) != "" {
		return run(stmt.String())
	}
	return nil
}

// runSQL runs sql (one or more statements) with the simple query protocol and prints each
// result: rows through an output.Writer, streamed, or the command tag.
func runSQL(ctx context.Context, conn *pgconn.PgConn, sql string, out io.Writer, f output.Format) error {
	mrr := conn.Exec(ctx, sql)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		fields := rr.FieldDescriptions()
		if len(fields) == 0 {
			tag, err := rr.Close()
			if err != nil {
				mrr.Close()
				return err
			}
			if s := tag.String(); s != "" {
				if _, err := fmt.Fprintln(out, s); err != nil {
					mrr.Close()
					return err
				}
			}
			continue
		}
		cols := make([]output.Column, len(fields))
		for i, fd := range fields {
			cols[i] = output.Column{Name: fd.Name, Align: alignFor(fd.DataTypeOID)}
		}
		w, err := output.NewWriter(out, f, cols)
		if err != nil {
			mrr.Close()
			return err
		}
		cells := make([]string, len(fields))
		for rr.NextRow() {
			for i, v := range rr.Values() {
				cells[i] = renderValue(fields[i].DataTypeOID, v)
			}
			if err := w.Row(cells...); err != nil {
				mrr.Close()
				return err
			}
		}
		if _, err := rr.Close(); err != nil {
			mrr.Close()
			return err
		}
		if err := w.Close(); err != nil {
			mrr.Close()
			return err
		}
	}
	return mrr.Close()
}

// alignFor is the table format's alignment for a column type, as cockroach chooses it:
// strings left, numbers right, booleans centred, anything else by its text.
func alignFor(oid uint32) output.Align {
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.ByteaOID, pgtype.QCharOID, pgtype.BPCharOID,
		pgtype.NameOID, pgtype.UUIDOID:
		return output.AlignLeft
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.Float4OID, pgtype.Float8OID,
		pgtype.NumericOID, pgtype.OIDOID:
		return output.AlignRight
	case pgtype.BoolOID:
		return output.AlignCenter
	}
	return output.AlignDefault
}

// renderValue renders one text-format value: NULL as NULL, booleans as true/false, TIMESTAMP
// with output.Timestamp, anything else as the server's text.
func renderValue(oid uint32, v []byte) string {
	if v == nil {
		return output.Null
	}
	switch oid {
	case pgtype.BoolOID:
		switch string(v) {
		case "t":
			return "true"
		case "f":
			return "false"
		}
	case pgtype.TimestampOID:
		if t, err := time.Parse("2006-01-02 15:04:05.999999999", string(v)); err == nil {
			return output.Timestamp(t)
		}
	}
	return string(v)
}
