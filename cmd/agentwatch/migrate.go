package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
)

func newMigrateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or check every table, index, TTL attribute and the journal's stream (idempotent)",
		Long: "migrate creates what is missing and checks what exists: in aws mode every DynamoDB table,\n" +
			"GSI, TTL attribute and the journal's stream (NEW_IMAGE, enabled on an existing agents table);\n" +
			"in embedded mode the SQLite schema. It prints what it created and what already existed.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if g.backend != "aws" {
				return g.withApp(ctx, app.Config{}, nil, func(context.Context) error {
					fmt.Fprintf(g.out, "sqlite schema is current in %s\n", g.dataDir)
					return nil
				})
			}
			client, err := dynamodb.NewClient(ctx)
			if err != nil {
				return err
			}
			reg, err := app.NewRegistry(app.Config{})
			if err != nil {
				return err
			}
			rep, err := dynamodb.Migrate(ctx, client, g.dynamoConfig(), reg, g.logger())
			if err != nil {
				return err
			}
			fmt.Fprint(g.out, rep.String())
			return nil
		},
	}
}
