package main

import "github.com/spf13/cobra"

// Placeholders until the auth-session and admin commands land (replace this file).
func newAuthSessionCmd(g *globalFlags) *cobra.Command { return &cobra.Command{Use: "auth-session"} }
func newAdminCmd(g *globalFlags) *cobra.Command       { return &cobra.Command{Use: "admin"} }
