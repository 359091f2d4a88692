package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/output"
	"github.com/sessionconsole/console/internal/tokens"
	"github.com/sessionconsole/console/sessionstore"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens (bearer tokens for scripts and the JSON API)",
		Long: `token manages the web console's API tokens. A token has a name, a role (viewer, operator or
owner) and an expiry; scripts send it as "Authorization: Bearer <token>" to the exports, the
JSON API (/api/v1/...) and every action its role allows, never to the HTML pages. The console
stores only a hash of each token: it is printed once, when it is made. Actions by a token are
recorded in the audit log as token:<name>.`,
		Example: `  TOKEN=$(console admin token create ci-export --role viewer --expire-after 720h)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/sessions.csv
  console admin token list
  console admin token revoke ci-export`,
		RunE: parentRunE,
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globalFlags) *cobra.Command {
	var role, expire string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make an API token and print it (once)",
		Long: `create makes the API token NAME (1-63 letters, digits, '_', '.', '@' or '-') with the role
--role, valid for --expire-after (hours, minutes and seconds, such as 720h; at most
--max-token-expire-after). It prints the token alone on standard output, and what it is on
standard error; the token cannot be shown again.`,
		Example: `  console admin token create ci-export --role viewer
  console admin token create deploy --role operator --expire-after 2h > deploy.token`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := tokens.CheckName(name); err != nil {
				return err
			}
			r, err := admins.ParseRole(role)
			if err != nil {
				return err
			}
			ttl, err := sessionstore.ParseExpiry(expire)
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				secret, t, err := a.tokens.Create(ctx, name, r, ttl, cliEntry())
				if err != nil {
					return tokenErr(name, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), secret)
				fmt.Fprintf(cmd.ErrOrStderr(), "created API token %q with role %s, expires %s UTC; it is shown only this once\n",
					name, r, output.Timestamp(t.ExpiresAt))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", string(admins.Viewer), "the token's role: viewer, operator or owner")
	cmd.Flags().StringVar(&expire, "expire-after", sessionstore.FormatDuration(tokens.DefaultTTL),
		"how long the token works (h, m and s: 720h is 30 days)")
	return cmd
}

func newTokenListCmd(g *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API tokens",
		Long: `list prints every API token by name: its role, who made it, when (UTC) it was made, expires and
was last used (NULL: never; updated at most once a minute), and whether it is active or expired.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := resolveFormat(format)
			if err != nil {
				return err
			}
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				list, err := a.tokens.List(ctx)
				if err != nil {
					return err
				}
				w, err := output.NewWriter(cmd.OutOrStdout(), f, []output.Column{
					{Name: "name", Align: output.AlignLeft}, {Name: "role", Align: output.AlignLeft},
					{Name: "created by", Align: output.AlignLeft}, {Name: "created"}, {Name: "expires"},
					{Name: "last used"}, {Name: "status", Align: output.AlignLeft},
				})
				if err != nil {
					return err
				}
				now := time.Now()
				for _, t := range list {
					last, status := "NULL", "active"
					if t.LastUsedAt != nil {
						last = output.Timestamp(*t.LastUsedAt)
					}
					if t.Expired(now) {
						status = "expired"
					}
					if err := w.Row(t.Name, string(t.Role), t.CreatedBy, output.Timestamp(t.CreatedAt),
						output.Timestamp(t.ExpiresAt), last, status); err != nil {
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

func newTokenRevokeCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke an API token",
		Long:    `revoke deletes the API token NAME: it stops working at once.`,
		Example: `  console admin token revoke ci-export`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return g.withApp(cmd, func(ctx context.Context, a *app) error {
				if err := a.tokens.Revoke(ctx, name, cliEntry()); err != nil {
					return tokenErr(name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked API token %q\n", name)
				return nil
			})
		},
	}
}

// tokenErr words the token store's errors for the command line.
func tokenErr(name string, err error) error {
	switch {
	case errors.Is(err, tokens.ErrNotFound):
		return fmt.Errorf("API token %q does not exist", name)
	case errors.Is(err, tokens.ErrExists):
		return fmt.Errorf("API token %q already exists", name)
	}
	return err
}
