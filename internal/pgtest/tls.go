package pgtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessionconsole/console/internal/pgembed"
)

// CA is a certificate authority made by a test: it signs server and client certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded (what a ca.crt file holds).
	PEM []byte
}

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(time.Now().UnixNano() + serial.n)
}

// NewCA makes a fresh CA named name, valid for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue signs a certificate for commonName and returns it and its PKCS #8 key, PEM-encoded. A
// server certificate covers 127.0.0.1 and localhost; a client certificate's common name is the
// database user it authenticates (PostgreSQL's cert method maps the CN to the user).
func (ca *CA) Issue(t testing.TB, commonName string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// WriteCertsDir writes a cockroach-style certificate directory into dir (created 0700 if
// missing): ca.crt holding caPEM, and client.<user>.crt and client.<user>.key (mode 0600)
// signed by ca for each user. It returns dir.
func WriteCertsDir(t testing.TB, dir string, caPEM []byte, ca *CA, users ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", caPEM, 0o644)
	for _, u := range users {
		c, k := ca.Issue(t, u, false)
		write("client."+u+".crt", c, 0o644)
		write("client."+u+".key", k, 0o600)
	}
	return dir
}

// TLSCluster is a PostgreSQL that, like a secure CockroachDB cluster, accepts only TLS
// connections authenticated by a client certificate (pg_hba: hostssl ... cert), with a server
// certificate for 127.0.0.1 and localhost signed by CA. Its superuser is root.
type TLSCluster struct {
	Host string // 127.0.0.1
	Port int
	CA   *CA

	cluster *pgembed.Cluster
	admin   string // certificate directory of root, for the test's own connections
}

var (
	tlsMu      sync.Mutex
	tlsCluster *TLSCluster
)

// TLS returns the test binary's TLS cluster, starting it on first use; Run stops it. A cluster
// that cannot start fails the test.
func TLS(t testing.TB) *TLSCluster {
	t.Helper()
	tlsMu.Lock()
	defer tlsMu.Unlock()
	if tlsCluster != nil {
		return tlsCluster
	}
	dir, err := os.MkdirTemp("", "pgtest-tls-")
	if err != nil {
		t.Fatal(err)
	}
	// The server runs as postgres when we are root: it must pass through dir and read the
	// files, and PostgreSQL wants its key owned by itself with mode 0600.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	ca := NewCA(t, "pgtest CA")
	serverCert, serverKey := ca.Issue(t, "localhost", true)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.crt", ca.PEM, 0o644},
		{"server.crt", serverCert, 0o644},
		{"server.key", serverKey, 0o600},
		// The scram line serves pgembed's own readiness check and set-up, on the maintenance
		// database only and without TLS; everything else needs TLS and a client certificate.
		{"pg_hba.conf", []byte("hostnossl postgres " + pgembed.Superuser + " 127.0.0.1/32 scram-sha-256\n" +
			"hostssl all all 127.0.0.1/32 cert\n"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := chownToServer(filepath.Join(dir, "server.key")); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgembed.Start(ctx, pgembed.Options{DataDir: dataDir, NoFsync: true, Settings: map[string]string{
		"ssl":           "on",
		"ssl_cert_file": filepath.Join(dir, "server.crt"),
		"ssl_key_file":  filepath.Join(dir, "server.key"),
		"ssl_ca_file":   filepath.Join(dir, "ca.crt"),
		"hba_file":      filepath.Join(dir, "pg_hba.conf"),
	}})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: start PostgreSQL with TLS: %v", err)
	}
	tc := &TLSCluster{Host: "127.0.0.1", Port: c.Port(), CA: ca, cluster: c}
	tc.admin = WriteCertsDir(t, filepath.Join(dir, "admin-certs"), ca.PEM, ca, pgembed.Superuser)
	addCleanup(func() {
		if err := c.Destroy(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		os.RemoveAll(dir)
	})
	tlsCluster = tc
	return tc
}

// chownToServer gives path to the user the embedded server runs as (postgres, when root).
func chownToServer(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("pgtest: no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// CertsDir writes a new certificate directory for the given users (ca.crt of the cluster's CA,
// client.<user>.crt and .key), removed when the test ends.
func (c *TLSCluster) CertsDir(t testing.TB, users ...string) string {
	t.Helper()
	return WriteCertsDir(t, filepath.Join(t.TempDir(), "certs"), c.CA.PEM, c.CA, users...)
}

// URL returns a URL for database db as root over TLS with a client certificate, for the
// test's own queries.
func (c *TLSCluster) URL(db string) string {
	d := c.admin
	q := url.Values{
		"sslmode":     {"verify-full"},
		"sslrootcert": {filepath.Join(d, "ca.crt")},
		"sslcert":     {filepath.Join(d, "client."+pgembed.Superuser+".crt")},
		"sslkey":      {filepath.Join(d, "client."+pgembed.Superuser+".key")},
	}
	u := url.URL{Scheme: "postgres", User: url.User(pgembed.Superuser), Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path: "/" + db, RawQuery: q.Encode()}
	return u.String()
}

// NewDB creates an empty database on the TLS cluster and returns its name; it is dropped when
// the test ends.
func (c *TLSCluster) NewDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("tls_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx := context.Background()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return name
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// addCleanup registers fn to run when Run ends the test binary.
func addCleanup(fn func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, fn)
	cleanupMu.Unlock()
}

func runCleanups() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}
