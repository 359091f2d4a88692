package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sessionconsole/console/internal/actions"
	"github.com/sessionconsole/console/internal/admins"
	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/internal/metrics"
)

// scrape reads /metrics with a viewer token and parses it.
func (s *server) scrape(t *testing.T) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	r := s.bearer(t, s.makeToken(t, "scraper"+strconv.FormatInt(userSeq.Add(1), 10), admins.Viewer)).get("/metrics")
	wantStatus(t, r, http.StatusOK)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("not the text format: %v\n%.1000s", err, r.body)
	}
	return fams, r.body
}

// value is the value of the series of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

// allowedLabels are the values each label of the console's own metrics may take.
func allowedLabels() map[string][]string {
	var sources, hows, results []string
	for _, o := range history.Origins {
		sources = append(sources, o.String())
	}
	for _, h := range metrics.Hows {
		hows = append(hows, string(h))
	}
	for _, r := range metrics.VerifyResults {
		results = append(results, string(r))
	}
	return map[string][]string{"status": metrics.Statuses, "source": sources, "how": hows, "result": results}
}

// checkLabels fails for a label of a console_ metric whose value is not one of the fixed set,
// for any username or secret anywhere in the exposition, and for a label that is a session ID.
func checkLabels(t *testing.T, fams map[string]*dto.MetricFamily, body string, users []string, ids []int64) {
	t.Helper()
	allowed := allowedLabels()
	for name, f := range fams {
		if !strings.HasPrefix(name, "console_") || name == "console_build_info" {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "le" || l.GetName() == "job" || l.GetName() == "rule" {
					continue
				}
				if vals, ok := allowed[l.GetName()]; !ok || !slices.Contains(vals, l.GetValue()) {
					t.Errorf("%s{%s=%q}: not a label value of the fixed set %v", name, l.GetName(), l.GetValue(), vals)
				}
			}
		}
	}
	for _, u := range users {
		if strings.Contains(body, u) {
			t.Errorf("the exposition names %q", u)
		}
	}
	for _, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				for _, id := range ids {
					if l.GetValue() == strconv.FormatInt(id, 10) && l.GetName() != "le" {
						t.Errorf("%s: label %s=%q holds session ID %d", f.GetName(), l.GetName(), l.GetValue(), id)
					}
				}
			}
		}
	}
}

// /auth/verify counts its requests by result and times them; the exposition names no user
// and no session.
func TestMetricsVerify(t *testing.T) {
	s := newServer(t)
	u := s.createUser(t, "metrics_user_qz")
	good := s.issue(t, u, time.Hour)
	bad := s.issue(t, u, time.Hour)
	if _, err := s.sessions.RevokeSession(t.Context(), bad.ID); err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	for _, h := range []map[string]string{
		{"X-Cockroach-API-Session": good.Cookie.Value()},
		{"X-Cockroach-API-Session": good.Cookie.Value()},
		{"X-Cockroach-API-Session": bad.Cookie.Value()},
		{},
	} {
		c.do(http.MethodGet, "/auth/verify", nil, h)
	}
	fams, body := s.scrape(t)
	for result, want := range map[string]float64{"valid": 2, "rejected": 1, "missing": 1, "error": 0} {
		if got := value(t, fams, "console_verify_requests_total", map[string]string{"result": result}); got != want {
			t.Errorf("verify %s: %v, want %v", result, got, want)
		}
	}
	if n := value(t, fams, "console_verify_duration_seconds", nil); n != 4 {
		t.Errorf("%v verify durations, want 4", n)
	}
	for _, name := range []string{"console_db_pool_max_connections", "go_goroutines", "process_cpu_seconds_total", "console_build_info"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	checkLabels(t, fams, body, []string{u, good.Cookie.Value(), bad.Cookie.Value()}, []int64{good.ID, bad.ID})
}

// Sessions issued and revoked through the console are counted when their action commits:
// issued as source=console, one revoked as how=session, all of a user's as how=user; a
// refused issue and a repeated revoke count nothing.
func TestMetricsIssuedRevoked(t *testing.T) {
	s := newServer(t)
	user := s.createUser(t, "metrics_rev_qz")
	op := s.bearer(t, s.makeToken(t, "metrics-op", admins.Operator))
	issue := func(body string) response {
		return op.doBody("POST", "/api/v1/sessions", "application/json", body)
	}
	var ids []string
	for range 4 {
		r := issue(fmt.Sprintf(`{"username": %q, "expire_after": "1h"}`, user))
		wantStatus(t, r, http.StatusCreated)
		ids = append(ids, decode[apiIssued](t, r).Session.ID)
	}
	wantStatus(t, issue(`{"username": "nobody-here", "expire_after": "1h"}`), http.StatusUnprocessableEntity)
	wantStatus(t, op.do("POST", "/api/v1/sessions/"+ids[0]+"/revoke", nil, nil), http.StatusOK)
	wantStatus(t, op.do("POST", "/api/v1/sessions/"+ids[0]+"/revoke", nil, nil), http.StatusOK)
	wantStatus(t, op.do("POST", "/api/v1/users/"+url.PathEscape(user)+"/revoke", nil, nil), http.StatusOK)

	fams, body := s.scrape(t)
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"console_sessions_issued_total", "source", "console", 4},
		{"console_sessions_issued_total", "source", "cli", 0},
		{"console_sessions_revoked_total", "how", "session", 1},
		{"console_sessions_revoked_total", "how", "user", 3},
		{"console_sessions_revoked_total", "how", "policy", 0},
	} {
		if got := value(t, fams, c.name, map[string]string{c.label: c.value}); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	checkLabels(t, fams, body, []string{user}, nil)
}

// A bulk revoke by an admin counts as how=bulk, a policy rule's enforcement as how=policy:
// batch by batch, after each commits.
func TestMetricsBulkAndPolicyRevoked(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	user := s.createUser(t, "metrics_bulk_qz")
	var ids []int64
	for range 5 {
		ids = append(ids, s.issue(t, user, time.Hour).ID)
	}
	admin := actions.Actor{Kind: actions.Admin, Name: "admin"}
	if _, err := s.actions.RevokeBulk(ctx, admin, actions.Bulk{IDs: ids[:3], Batch: 2}); err != nil {
		t.Fatal(err)
	}
	// The same sessions again: nothing revoked, nothing counted.
	if _, err := s.actions.RevokeBulk(ctx, admin, actions.Bulk{IDs: ids[:3]}); err != nil {
		t.Fatal(err)
	}
	enforcer := actions.Actor{Kind: actions.Policy, Name: "max-lifetime"}
	if _, err := s.actions.RevokeBulk(ctx, enforcer, actions.Bulk{IDs: ids[3:], Rule: "max-lifetime"}); err != nil {
		t.Fatal(err)
	}
	fams, _ := s.scrape(t)
	for how, want := range map[string]float64{"bulk": 3, "policy": 2, "session": 0, "user": 0} {
		if got := value(t, fams, "console_sessions_revoked_total", map[string]string{"how": how}); got != want {
			t.Errorf("console_sessions_revoked_total{how=%q} = %v, want %v", how, got, want)
		}
	}
}
