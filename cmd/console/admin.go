package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/output"
)

func newAdminCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the web console's admin accounts",
		Long: `admin manages the accounts that sign in to the web console (console serve). They are the
console's own accounts, stored with bcrypt hashes in the console schema of the database; they
are not database users.

Passwords are never taken from the command line: on a terminal they are asked for twice,
without echo; otherwise the first line of standard input is the password. A password has at
least ` + fmt.Sprint(admins.MinPasswordLength) + ` characters and at most 72 bytes.`,
		Example: `  console admin add alice
  console admin passwd alice < new-password.txt
  console admin list
  console admin remove alice`,
		RunE: parentRunE,
	}
	cmd.AddCommand(newAdminAddCmd(g), newAdminPasswdCmd(g), newAdminListCmd(g), newAdminRemoveCmd(g))
	return cmd
}

// adminNameArg accepts exactly one NAME. A second argument is most likely a password, which
// would end up in the shell history and the process list: say so.
func adminNameArg(password bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 && password {
			return fmt.Errorf("%s takes only NAME: a password is never accepted on the command line; "+
				"type it at the prompt or give it on standard input", subcommandPath(cmd))
		}
		return exactArgs("NAME")(cmd, args)
	}
}

func newAdminAddCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME",
		Short: "Add a web console admin",
		Long: `add creates the web console admin NAME (1-63 letters, digits, '_', '.', '@' or '-', starting
with a letter or digit). The password is asked for twice on a terminal, or read from the first
line of standard input.`,
		Example: `  console admin add alice
  printf '%s\n' "$ALICE_PASSWORD" | console admin add alice`,
		Args: adminNameArg(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := admins.CheckName(name); err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if ok, err := adminExists(ctx, a, name); err != nil {
					return err
				} else if ok {
					return fmt.Errorf("admin %q already exists", name)
				}
				password, err := readPassword(ctx, cmd, name)
				if err != nil {
					return err
				}
				if err := a.admins.Add(ctx, name, password); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added admin %q\n", name)
				return nil
			})
		},
	}
}

func newAdminPasswdCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a web console admin's password",
		Long: `passwd sets a new password for the web console admin NAME and signs that admin out of every
browser. The password is asked for twice on a terminal, or read from the first line of
standard input.`,
		Example: `  console admin passwd alice
  console admin passwd alice < new-password.txt`,
		Args: adminNameArg(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if ok, err := adminExists(ctx, a, name); err != nil {
					return err
				} else if !ok {
					return fmt.Errorf("admin %q does not exist", name)
				}
				password, err := readPassword(ctx, cmd, name)
				if err != nil {
					return err
				}
				if err := a.admins.SetPassword(ctx, name, password); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "changed the password of admin %q and ended its browser sessions\n", name)
				return nil
			})
		},
	}
}

func newAdminListCmd(g *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the web console admins",
		Long:  `list prints every web console admin by name, with the times (UTC) it was created and its password last changed.`,
		Example: `  console admin list
  console admin list --format=json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				list, err := a.admins.List(ctx)
				if err != nil {
					return err
				}
				w, err := output.NewWriter(cmd.OutOrStdout(), f, []output.Column{
					{Name: "name", Align: output.AlignLeft}, {Name: "created"}, {Name: "updated"},
				})
				if err != nil {
					return err
				}
				for _, ad := range list {
					if err := w.Row(ad.Name, output.Timestamp(ad.CreatedAt), output.Timestamp(ad.UpdatedAt)); err != nil {
						return outputErr(err)
					}
				}
				return outputErr(w.Close())
			})
		},
	}
	addFormatFlag(cmd, &format)
	return cmd
}

func newAdminRemoveCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a web console admin",
		Long: `remove deletes the web console admin NAME and ends its browser sessions. When the last admin
is removed, the next console serve creates a new one with a random password, as on first start.`,
		Example: `  console admin remove alice`,
		Args:    adminNameArg(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.admins.Remove(ctx, name); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed admin %q\n", name)
				return nil
			})
		},
	}
}

func adminExists(ctx context.Context, a *app, name string) (bool, error) {
	list, err := a.admins.List(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list, func(ad admins.Admin) bool { return ad.Name == name }), nil
}

// adminErr words the store's not-found and exists errors for the command line.
func adminErr(name string, err error) error {
	switch {
	case errors.Is(err, admins.ErrNotFound):
		return fmt.Errorf("admin %q does not exist", name)
	case errors.Is(err, admins.ErrExists):
		return fmt.Errorf("admin %q already exists", name)
	}
	return err
}

// readPassword gets a new password: on a terminal from a prompt on stderr, without echo, asked
// twice; otherwise from the first line of standard input (without its line ending). It checks
// the password against admins.CheckPassword.
func readPassword(ctx context.Context, cmd *cobra.Command, name string) (string, error) {
	var password string
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		errOut := cmd.ErrOrStderr()
		p1, err := promptPassword(ctx, fd, errOut, fmt.Sprintf("New password for admin %q: ", name))
		if err != nil {
			return "", err
		}
		if err := admins.CheckPassword(p1); err != nil {
			return "", err
		}
		p2, err := promptPassword(ctx, fd, errOut, "Repeat the password: ")
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the passwords do not match")
		}
		password = p1
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		if line == "" {
			return "", errors.New("no password: standard input is empty (give the password on its first line, or run on a terminal to be asked)")
		}
		password = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	}
	if err := admins.CheckPassword(password); err != nil {
		return "", err
	}
	return password, nil
}

// promptPassword reads one password from the terminal fd without echo. An interrupt restores
// the terminal and returns the context's error.
func promptPassword(ctx context.Context, fd int, prompt io.Writer, text string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, text)
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		fmt.Fprintln(prompt)
		if r.err != nil {
			return "", fmt.Errorf("read the password: %w", r.err)
		}
		return string(r.b), nil
	case <-ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(prompt)
		return "", ctx.Err()
	}
}
