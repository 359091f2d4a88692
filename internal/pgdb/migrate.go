package pgdb

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one versioned step of a component's schema. Steps run in order, each once.
// Steps must be idempotent (IF NOT EXISTS, ...): on CockroachDB they run outside a transaction
// (schema changes in explicit transactions are not atomic there), so a step cut short by a crash
// runs again in full at the next start.
type Migration struct {
	Version int
	SQL     string
}

// Migrate applies the steps of component that have not run yet, recording each in
// console.schema_migrations. It is safe when several processes start at once: on PostgreSQL an
// advisory lock serialises them and each step commits with its record in one transaction; on
// CockroachDB (where advisory locks do not exist) a row of console.migration_lock, locked in a
// transaction for the whole run, serialises them, and a step that CockroachDB refuses because
// its table is schema_locked (the default for tables created on v26.1+) runs again with that
// table unlocked, which is locked again afterwards.
func Migrate(ctx context.Context, pool *pgxpool.Pool, flavor Flavor, component string, steps []Migration) error {
	var err error
	if flavor == Cockroach {
		err = migrateCockroach(ctx, pool, component, steps)
	} else {
		err = migratePostgres(ctx, pool, component, steps)
	}
	if err != nil {
		return Privilege(err, pool.Config().ConnConfig.User, "create or change the console's tables in schema "+Schema)
	}
	return nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS console.schema_migrations (
	component TEXT NOT NULL,
	version INT8 NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version))`

const recordStep = "INSERT INTO console.schema_migrations (component, version) VALUES ($1, $2) ON CONFLICT DO NOTHING"

func migratePostgres(ctx context.Context, pool *pgxpool.Pool, component string, steps []Migration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Unavailable(fmt.Errorf("pgdb: migrate %s: %w", component, err))
	}
	defer conn.Release()
	// One lock for all components: CREATE SCHEMA IF NOT EXISTS itself races otherwise.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7364021, 1)"); err != nil {
		return fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7364021, 1)")
	for _, sql := range []string{`CREATE SCHEMA IF NOT EXISTS console`, migrationsTable} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgdb: migrate %s: %w", component, err)
		}
	}
	applied, err := appliedSteps(ctx, conn, component)
	if err != nil {
		return err
	}
	for _, m := range steps {
		if applied[int64(m.Version)] {
			continue
		}
		err := RunTx(ctx, conn, Postgres, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, recordStep, component, m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("pgdb: migrate %s to version %d: %w", component, m.Version, err)
		}
	}
	return nil
}

func appliedSteps(ctx context.Context, q DBTX, component string) (map[int64]bool, error) {
	rows, err := q.Query(ctx, "SELECT version FROM console.schema_migrations WHERE component = $1", component)
	if err != nil {
		return nil, fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	applied := map[int64]bool{}
	for _, v := range done {
		applied[v] = true
	}
	return applied, nil
}

// cockroachBootstrap creates what the migration lock needs. Every statement is idempotent; when
// several processes race to create the same object, the losers' errors (a retry error, or
// "already exists" from servers that check late) are answered by running the statement again.
var cockroachBootstrap = []string{
	`CREATE SCHEMA IF NOT EXISTS console`,
	`CREATE TABLE IF NOT EXISTS console.migration_lock (id INT8 NOT NULL PRIMARY KEY)`,
	`INSERT INTO console.migration_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING`,
	migrationsTable,
}

func migrateCockroach(ctx context.Context, pool *pgxpool.Pool, component string, steps []Migration) error {
	for _, sql := range cockroachBootstrap {
		err := Retry(ctx, func() error {
			_, err := pool.Exec(ctx, sql)
			switch sqlState(err) {
			case "23505", "42P06", "42P07", "42710": // unique violation; duplicate schema, table, object
				return &pgconn.PgError{Code: "40001", Message: "created concurrently: " + err.Error()}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("pgdb: migrate %s: %w", component, Unavailable(err))
		}
	}
	// The lock lives in its own connection, so that no pool size can starve the steps of one;
	// if this process dies, the connection and with it the lock go away.
	lock, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return Unavailable(fmt.Errorf("pgdb: migrate %s: %w", component, err))
	}
	defer lock.Close(context.WithoutCancel(ctx))
	return RunTx(ctx, lock, Cockroach, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT id FROM console.migration_lock WHERE id = 1 FOR UPDATE"); err != nil {
			return fmt.Errorf("pgdb: migrate %s: lock: %w", component, err)
		}
		applied, err := appliedSteps(ctx, pool, component)
		if err != nil {
			return err
		}
		for _, m := range steps {
			if applied[int64(m.Version)] {
				continue
			}
			if err := runCockroachStep(ctx, pool, m); err != nil {
				return fmt.Errorf("pgdb: migrate %s to version %d: %w", component, m.Version, err)
			}
			if _, err := pool.Exec(ctx, recordStep, component, m.Version); err != nil {
				return fmt.Errorf("pgdb: migrate %s to version %d: %w", component, m.Version, err)
			}
		}
		return nil
	})
}

// lockedTableRE matches CockroachDB's refusal of a schema change on a schema_locked table
// (sqlerrors.NewSchemaChangeOnLockedTableErr, SQLSTATE 57000).
var lockedTableRE = regexp.MustCompile(`schema changes are disallowed on table "([^"]+)" because it is locked`)

// maxUnlocks bounds how many tables one step may unlock.
const maxUnlocks = 8

// runCockroachStep runs one step; when CockroachDB refuses it because a table of the console
// schema is schema_locked, it unlocks that table and runs the (idempotent) step again, and
// locks every table it unlocked once the step is done, whatever its outcome.
func runCockroachStep(ctx context.Context, pool *pgxpool.Pool, m Migration) (err error) {
	var unlocked []string
	defer func() {
		for _, t := range unlocked {
			if _, lerr := pool.Exec(context.WithoutCancel(ctx), "ALTER TABLE "+t+" SET (schema_locked = true)"); lerr != nil && err == nil {
				err = fmt.Errorf("lock %s again: %w", t, lerr)
			}
		}
	}()
	for {
		_, err = pool.Exec(ctx, m.SQL)
		match := lockedTableRE.FindStringSubmatch(errString(err))
		if sqlState(err) != "57000" || match == nil || len(unlocked) == maxUnlocks {
			return err
		}
		table := pgx.Identifier{Schema, match[1]}.Sanitize()
		if _, err := pool.Exec(ctx, "ALTER TABLE "+table+" SET (schema_locked = false)"); err != nil {
			return fmt.Errorf("unlock %s: %w", table, err)
		}
		unlocked = append(unlocked, table)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
