package main

import (
	"fmt"
	"os"
	"testing"
)

func TestSQL(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	const values = `SELECT 1 AS int, NULL AS "null", 'left'::text AS text, TIMESTAMP '2022-08-02 16:47:36.342330' AS ts,
		true AS bool, 1.50::numeric AS num, 'a'::varchar AS vc, TIMESTAMPTZ '2022-08-02 16:47:36+02' AS tstz, '\x00ff'::bytea AS bytes`
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"values table", "", []string{"-e", values, "--format=table"},
			`  int | null | text |            ts             | bool | num  | vc |          tstz          | bytes
------+------+------+---------------------------+------+------+----+------------------------+---------
    1 | NULL | left | 2022-08-02 16:47:36.34233 | true | 1.50 | a  | 2022-08-02 14:47:36+00 | \x00ff
(1 row)
`},
		{"values json", "", []string{"-e", values, "--format=json"},
			`[
  {"bool":"true","bytes":"\\x00ff","int":"1","null":"NULL","num":"1.50","text":"left","ts":"2022-08-02 16:47:36.34233","tstz":"2022-08-02 14:47:36+00","vc":"a"}
]
`},
		{"default tsv", "", []string{"-e", "SELECT 'a b' AS x, 2 AS y"}, "x\ty\na b\t2\n"},
		{"command tags and rows", "", []string{
			"-e", "CREATE TABLE t1 (a int)",
			"-e", "INSERT INTO t1 VALUES (2), (1)",
			"-e", "SELECT a FROM t1 ORDER BY a",
			"-e", "UPDATE t1 SET a = a + 1; SELECT count(*) AS n FROM t1",
			"--format=csv"},
			"CREATE TABLE\nINSERT 0 2\na\n1\n2\nUPDATE 2\nn\n2\n"},
		{"no rows", "", []string{"-e", "SELECT a FROM t1 WHERE false", "--format=table"}, "  a\n-----\n(0 rows)\n"},
		{"stdin", `-- a comment before the first statement

CREATE TABLE t2 (
	a int,
	b text
);
INSERT INTO t2 VALUES (1, 'x;y'), (2, NULL);
SELECT * FROM t2
ORDER BY a;
SELECT 'without a final semicolon' AS last`, []string{"--format=csv"},
			"CREATE TABLE\nINSERT 0 2\na,b\n1,x;y\n2,NULL\nlast\nwithout a final semicolon\n"},
		{"stdin empty", "", nil, ""},
		// The sql command opens none of the stores, so it works whatever the dialect flag says.
		{"any dialect", "", []string{"--dialect", "cockroach", "-e", "SELECT 1 AS one"}, "one\n1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tg.flags(), "sql")
			if len(tc.args) > 0 && tc.args[0] == "--dialect" {
				args = append(tg.flags(), tc.args[0], tc.args[1], "sql")
				tc.args = tc.args[2:]
			}
			r := run(t, tc.stdin, append(args, tc.args...)...)
			if r.code != 0 || r.stderr != "" || r.stdout != tc.want {
				t.Errorf("%s\nwant stdout:\n%s", r, tc.want)
			}
		})
	}

	t.Run("errors stop", func(t *testing.T) {
		r := tg.console(t, "sql", "-e", "SELECT 1 AS one", "-e", "SELECT * FROM nope", "-e", "CREATE TABLE never (a int)")
		if r.code == 0 || r.stdout != "one\n1\n" || r.stderr != "console: ERROR: relation \"nope\" does not exist (SQLSTATE 42P01)\n" {
			t.Errorf("%s", r)
		}
		r = run(t, "CREATE TABLE first (a int);\nSELECT nope;\nCREATE TABLE never (a int);\n", append(tg.flags(), "sql")...)
		if r.code == 0 || r.stdout != "CREATE TABLE\n" || r.stderr != "console: ERROR: column \"nope\" does not exist (SQLSTATE 42703)\n" {
			t.Errorf("%s", r)
		}
		if n := tg.queryInt(t, `SELECT count(*) FROM pg_tables WHERE tablename IN ('first', 'never')`); n != 1 {
			t.Errorf("%d of the tables first and never exist, want only first", n)
		}
	})

	// The purpose: create the user a session is for.
	t.Run("create user then login", func(t *testing.T) {
		name := fmt.Sprintf("sql_user_%d", os.Getpid())
		tg.fails(t, crdbErr("auth-session login", `user "`+name+`" does not exist`), "auth-session", "login", name)
		if got := tg.ok(t, "sql", "-e", "CREATE USER "+name); got != "CREATE ROLE\n" {
			t.Fatalf("CREATE USER: %q", got)
		}
		t.Cleanup(func() { tg.console(t, "sql", "-e", "DROP ROLE "+name) })
		rows := jsonRows(t, tg.ok(t, "auth-session", "login", name, "--format=json"))
		if len(rows) != 1 || rows[0]["username"] != name {
			t.Errorf("login: %v", rows)
		}
	})
}
