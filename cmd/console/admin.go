package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/audit"
	"github.com/sessionconsole/console/internal/output"
)

func newAdminCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the web console's admin accounts and API tokens",
		Long: `admin manages the accounts that sign in to the web console (console serve), and the API
tokens that scripts use. Accounts are the console's own, stored with bcrypt hashes in the
console schema of the database; they are not database users.

Each admin has a role: viewer (reads every page, export and the audit log; changes nothing),
operator (also issues and revokes sessions) or owner (also manages admins, tokens and
settings). The last owner can be neither removed nor demoted. Admins that sign in by single
sign-on (named oidc:...) get their role from the identity provider at each sign-in.

Passwords are never taken from the command line: on a terminal they are asked for twice,
without echo; otherwise the first line of standard input is the password. A password has at
least ` + fmt.Sprint(admins.MinPasswordLength) + ` characters and at most 72 bytes. Every change is recorded in the
audit log as cli:<os user>.`,
		Example: `  console admin add alice --role operator
  console admin role alice owner
  console admin passwd alice < new-password.txt
  console admin list
  console admin remove alice
  console admin token create ci-export --role viewer --expire-after 720h`,
		RunE: parentRunE,
	}
	cmd.AddCommand(newAdminAddCmd(g), newAdminPasswdCmd(g), newAdminRoleCmd(g), newAdminListCmd(g),
		newAdminRemoveCmd(g), newTokenCmd(g))
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

// cliEntry is the audit actor of a command: cli:<os user>.
func cliEntry() audit.Entry { return audit.Entry{Admin: cliActor()} }

func newAdminAddCmd(g *globalFlags) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a web console admin",
		Long: `add creates the web console admin NAME (1-63 letters, digits, '_', '.', '@' or '-', starting
with a letter or digit) with the role --role. The password is asked for twice on a terminal,
or read from the first line of standard input.`,
		Example: `  console admin add alice --role operator
  printf '%s\n' "$ALICE_PASSWORD" | console admin add alice --role viewer`,
		Args: adminNameArg(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := admins.CheckName(name); err != nil {
				return err
			}
			r, err := admins.ParseRole(role)
			if err != nil {
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
				if _, err := a.admins.Create(ctx, admins.NewAdmin{Name: name, Role: r, Password: password}, cliEntry()); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added admin %q with role %s\n", name, r)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", string(admins.Viewer), "the admin's role: viewer, operator or owner")
	return cmd
}

func newAdminPasswdCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a web console admin's password",
		Long: `passwd sets a new password for the web console admin NAME and signs that admin out of every
browser. The password is asked for twice on a terminal, or read from the first line of
standard input. Admins that sign in by single sign-on have no password here.`,
		Example: `  console admin passwd alice
  console admin passwd alice < new-password.txt`,
		Args: adminNameArg(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				ad, err := a.admins.Get(ctx, name)
				if err != nil {
					return adminErr(name, err)
				}
				if ad.Method != admins.MethodPassword {
					return adminErr(name, admins.ErrSSO)
				}
				password, err := readPassword(ctx, cmd, name)
				if err != nil {
					return err
				}
				if err := a.admins.SetPassword(ctx, name, password, cliEntry()); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "changed the password of admin %q and ended its browser sessions\n", name)
				return nil
			})
		},
	}
}

func newAdminRoleCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "role NAME ROLE",
		Short: "Change a web console admin's role",
		Long: `role gives the web console admin NAME the role ROLE (viewer, operator or owner), from its next
request on. The last owner cannot be demoted. Admins that sign in by single sign-on get their
role from the identity provider (--oidc-roles) at each sign-in, so it cannot be set here.`,
		Example: `  console admin role alice owner
  console admin role bob viewer`,
		Args: exactArgs("NAME", "ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			r, err := admins.ParseRole(args[1])
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.admins.SetRole(ctx, name, r, cliEntry()); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "admin %q now has role %s\n", name, r)
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
		Long: `list prints every web console admin by name: its role, how it signs in (password or oidc),
and the times (UTC) it was created, last changed and last signed in (NULL: never).`,
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
					{Name: "name", Align: output.AlignLeft}, {Name: "role", Align: output.AlignLeft},
					{Name: "sign-in", Align: output.AlignLeft}, {Name: "created"}, {Name: "updated"}, {Name: "last sign-in"},
				})
				if err != nil {
					return err
				}
				for _, ad := range list {
					last := "NULL"
					if ad.LastSignIn != nil {
						last = output.Timestamp(*ad.LastSignIn)
					}
					if err := w.Row(ad.Name, string(ad.Role), string(ad.Method), output.Timestamp(ad.CreatedAt),
						output.Timestamp(ad.UpdatedAt), last); err != nil {
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
		Long: `remove deletes the web console admin NAME and ends its browser sessions. The last owner cannot
be removed (make another admin an owner first).`,
		Example: `  console admin remove alice`,
		Args:    adminNameArg(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.admins.Remove(ctx, name, cliEntry()); err != nil {
					return adminErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed admin %q\n", name)
				return nil
			})
		},
	}
}

func adminExists(ctx context.Context, a *app, name string) (bool, error) {
	_, err := a.admins.Get(ctx, name)
	if errors.Is(err, admins.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// adminErr words the store's errors for the command line.
func adminErr(name string, err error) error {
	switch {
	case errors.Is(err, admins.ErrNotFound):
		return fmt.Errorf("admin %q does not exist", name)
	case errors.Is(err, admins.ErrExists):
		return fmt.Errorf("admin %q already exists", name)
	case errors.Is(err, admins.ErrLastOwner):
		return fmt.Errorf("admin %q is the last owner: it can be neither removed nor demoted (make another admin an owner first)", name)
	case errors.Is(err, admins.ErrSSO):
		return fmt.Errorf("admin %q signs in by single sign-on: its role comes from the identity provider at each sign-in, and it has no password here", name)
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
