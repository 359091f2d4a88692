package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Web CSV exports neutralise cells a spreadsheet would run as formulas (a leading '), in the
// sessions and the audit export; JSON keeps the values as they are.
func TestCSVFormulaCellsNeutralised(t *testing.T) {
	s := newServer(t)
	formulas := []string{`=HYPERLINK("http://evil.example","x")`, "+1+1", "-2+3", "@SUM(A1)"}
	for _, name := range formulas {
		s.createRole(t, name)
		s.issue(t, name, time.Hour)
	}
	// Names with a leading tab or carriage return cannot be issued: written in directly.
	s.createRole(t, "plain")
	for _, name := range []string{"\tTAB", "\rCR"} {
		is := s.issue(t, "plain", time.Hour)
		if tag, err := s.pool.Exec(context.Background(), `UPDATE console.web_sessions SET username = $1 WHERE id = $2`, name, is.ID); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("renaming session %d to %q: %v, %v", is.ID, name, tag, err)
		}
		formulas = append(formulas, name)
	}
	// A failed sign-in plants one in the audit log without signing in.
	planted := `=cmd|' /C calc'!A0`
	anon := s.client(t)
	anon.get("/login")
	anon.post("/login", url.Values{"username": {planted}, "password": {"x"}})

	c := s.signIn(t)
	recs, err := csv.NewReader(strings.NewReader(c.get("/sessions.csv?status=all").body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, rec := range recs[1:] {
		got[rec[0]] = true
	}
	// (cockroach's value format writes a carriage return as \r)
	printed := func(name string) string { return strings.ReplaceAll(name, "\r", `\r`) }
	for _, name := range formulas {
		if !got["'"+printed(name)] || got[printed(name)] {
			t.Errorf("sessions.csv: %q not neutralised (%q)", name, recs)
		}
	}
	var objs []map[string]string
	json.Unmarshal([]byte(c.get("/sessions.json?status=all").body), &objs)
	inJSON := map[string]bool{}
	for _, o := range objs {
		inJSON[o["username"]] = true
	}
	for _, name := range formulas {
		if !inJSON[printed(name)] {
			t.Errorf("sessions.json: %q changed", name)
		}
	}
	recs, err = csv.NewReader(strings.NewReader(c.get("/audit.csv").body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs[1:] {
		for _, cell := range rec {
			if strings.ContainsAny(cell[:min(1, len(cell))], "=+-@\t\r") {
				t.Errorf("audit.csv: cell %q", cell)
			}
		}
		found = found || rec[1] == "'"+planted
	}
	if !found {
		t.Errorf("audit.csv lacks the neutralised failed sign-in: %q", recs)
	}
}
