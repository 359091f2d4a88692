-- CockroachDB's system.users and system.web_sessions (v23.1+ shape, with user_id), rebuilt on
-- PostgreSQL with the columns, types and indexes of reference/crdb-web-sessions.md section 1.
CREATE SCHEMA system;
CREATE SEQUENCE system.rowid_seq;
-- Like CockroachDB's unique_rowid(): time-ordered, large (~2^59..2^62) INT8 values.
CREATE FUNCTION system.unique_rowid() RETURNS INT8 LANGUAGE sql VOLATILE AS $$
	SELECT ((extract(epoch FROM clock_timestamp()) * 100000)::INT8 << 15) | (nextval('system.rowid_seq') & 32767)
$$;
CREATE TABLE system.users (
	username TEXT NOT NULL PRIMARY KEY,
	"hashedPassword" BYTEA NULL,
	"isRole" BOOL NOT NULL DEFAULT false,
	user_id OID NOT NULL
);
CREATE UNIQUE INDEX users_user_id_idx ON system.users (user_id);
CREATE TABLE system.web_sessions (
	id INT8 NOT NULL DEFAULT system.unique_rowid(),
	"hashedSecret" BYTEA NOT NULL,
	username TEXT NOT NULL,
	"createdAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
	"expiresAt" TIMESTAMP NOT NULL,
	"revokedAt" TIMESTAMP NULL,
	"lastUsedAt" TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
	"auditInfo" TEXT NULL,
	user_id OID NOT NULL,
	CONSTRAINT "primary" PRIMARY KEY (id)
);
CREATE INDEX "web_sessions_expiresAt_idx" ON system.web_sessions ("expiresAt" ASC);
CREATE INDEX "web_sessions_createdAt_idx" ON system.web_sessions ("createdAt" ASC);
CREATE INDEX "web_sessions_revokedAt_idx" ON system.web_sessions ("revokedAt" ASC);
CREATE INDEX "web_sessions_lastUsedAt_idx" ON system.web_sessions ("lastUsedAt" ASC);
INSERT INTO system.users (username, "hashedPassword", "isRole", user_id) VALUES
	('root', NULL, false, 1),
	('admin', NULL, true, 2);
