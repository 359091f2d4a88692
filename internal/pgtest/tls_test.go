package pgtest

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestTLSCluster: the TLS cluster takes a verified TLS connection with a client certificate of
// its CA for the certificate's user, and nothing else.
func TestTLSCluster(t *testing.T) {
	c := TLS(t)
	db := c.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		t.Fatalf("TLS with root's certificate: %v", err)
	}
	var user, dbName string
	var ssl bool
	err = conn.QueryRow(ctx, "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &dbName, &ssl)
	conn.Close(ctx)
	if err != nil || user != "root" || dbName != db || !ssl {
		t.Fatalf("connected as %q to %q, ssl %v, %v", user, dbName, ssl, err)
	}

	hostPort := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	certs := c.CertsDir(t, "root", "alice")
	withCerts := func(dir, user string) string {
		q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {dir + "/ca.crt"},
			"sslcert": {dir + "/client." + user + ".crt"}, "sslkey": {dir + "/client." + user + ".key"}}
		return "postgres://root@" + hostPort + "/" + db + "?" + q.Encode()
	}
	wrongCA := WriteCertsDir(t, t.TempDir(), NewCA(t, "another CA").PEM, c.CA, "root")
	otherClients := WriteCertsDir(t, t.TempDir(), c.CA.PEM, NewCA(t, "another CA"), "root")
	refused := []struct{ name, url, want string }{
		{"plain text", "postgres://root@" + hostPort + "/" + db + "?sslmode=disable", "no pg_hba.conf entry"},
		{"TLS without a client certificate", "postgres://root@" + hostPort + "/" + db + "?sslmode=verify-full&sslrootcert=" + certs + "/ca.crt", "requires a valid client certificate"},
		{"another user's certificate", withCerts(certs, "alice"), "certificate authentication failed"},
		{"a server certificate from another CA", withCerts(wrongCA, "root"), "certificate signed by unknown authority"},
		{"a client certificate from another CA", withCerts(otherClients, "root"), ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, tc.url)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
