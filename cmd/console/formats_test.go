package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sessionconsole/console/internal/output"
)

// TestFormatsEndToEnd runs list, logout and login of the built binary in every --format on the
// reference page's sessions and compares each output with its golden file: byte for byte what
// cockroach's reporters print (see internal/output for the format rules and their sources).
func TestFormatsEndToEnd(t *testing.T) {
	t.Parallel()
	tg := urlTarget(t)
	tg.ok(t, "auth-session", "list") // migrate
	tg.exec(t, `INSERT INTO console.web_sessions (id, "hashedSecret", username, "createdAt", "expiresAt", "revokedAt", "lastUsedAt") VALUES
		(784428093743988737, '\x00', 'root', '2022-08-02 16:47:36.342338', '2022-08-02 17:47:36.341997', NULL, '2022-08-02 16:47:36.342338'),
		(784447132063662081, '\x00', 'web_user', '2022-08-02 18:24:26.37664', '2022-08-02 19:24:26.376299', '2022-08-02 18:24:50.819614', '2022-08-02 18:24:26.37664'),
		(784449147579924481, '\x00', 'web_user', '2022-08-02 18:34:41.463345', '2022-08-02 19:34:41.463006', '2022-08-02 18:47:20.105254', '2022-08-02 18:34:41.463345')`)
	for _, f := range output.Formats {
		t.Run(string(f), func(t *testing.T) {
			flag := "--format=" + string(f)
			golden(t, "formats/list."+string(f)+".golden", tg.ok(t, "auth-session", "list", flag))
			// Every session of web_user was revoked earlier: logout keeps those times.
			golden(t, "formats/logout."+string(f)+".golden", tg.ok(t, "auth-session", "logout", "web_user", flag))
			golden(t, "formats/logout-none."+string(f)+".golden", tg.ok(t, "auth-session", "logout", "nobody", flag))
			// Every login gets the reference page's session ID (its row is removed after).
			tg.exec(t, fmt.Sprintf("ALTER TABLE console.web_sessions ALTER COLUMN id RESTART WITH %d", firstID))
			login := maskCookies(t, tg.ok(t, "auth-session", "login", "root", flag))
			tg.exec(t, "DELETE FROM console.web_sessions WHERE id = $1", firstID)
			if !strings.Contains(login, "session=") {
				t.Fatalf("login printed no cookie:\n%s", login)
			}
			golden(t, "formats/login."+string(f)+".golden", login)
		})
	}
}
