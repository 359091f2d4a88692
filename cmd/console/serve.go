package main

import (
	"github.com/spf13/cobra"
)

func newServeCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Serve the web console", RunE: func(cmd *cobra.Command, args []string) error { return nil }}
}
