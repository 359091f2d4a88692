package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// revocationSamples and revocationPolls bound the revocation measurement: how many sessions
// are revoked, and how many /auth/verify requests each may take to be refused.
const (
	revocationSamples = 20
	revocationPolls   = 1000
)

// Revocation is how soon a revoke takes effect at /auth/verify: for each of Samples sessions,
// the time from the revoke's response (POST /sessions/{id}/revoke through the console) to the
// first 401 from the console's /auth/verify for that session's cookie, asked again and again
// right after the response.
type Revocation struct {
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	Maxms   float64 `json:"max_ms"`
	// AcceptedAfter is the most /auth/verify requests of one session that still answered 200
	// after its revoke's response (0: the first request after it is refused).
	AcceptedAfter int `json:"accepted_after_revoke"`
}

// revocationLatency measures Revocation on the console behind c. Each session is issued in
// the database, verified once through the console (so that anything the console keeps of it
// is warm), revoked through the console, then asked for until refused. The sessions are
// deleted afterwards.
func (e *sizeEnv) revocationLatency(ctx context.Context, c *Client) (*Revocation, error) {
	defer e.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM console.web_sessions WHERE id > $1`, e.seeded.MaxID)
	var lat []time.Duration
	out := &Revocation{}
	for i := range revocationSamples {
		iss, err := e.store.Issue(ctx, e.seeded.IssueUsers[i%len(e.seeded.IssueUsers)], time.Hour)
		if err != nil {
			return nil, err
		}
		verify := Request{Path: "/auth/verify", Header: http.Header{"X-Cockroach-Api-Session": {iss.Cookie.Value()}},
			Want: []int{http.StatusOK, http.StatusUnauthorized}}
		if resp, err := c.Do(ctx, verify); err != nil || resp.Status != http.StatusOK {
			return nil, fmt.Errorf("a fresh session was not accepted (status %d): %v", resp.Status, err)
		}
		if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/sessions/" + strconv.FormatInt(iss.ID, 10) + "/revoke",
			Header: hxHeader, Form: map[string][]string{}, Want: []int{http.StatusOK, http.StatusSeeOther}}); err != nil {
			return nil, err
		}
		revoked := time.Now()
		accepted := 0
		for {
			resp, err := c.Do(ctx, verify)
			if err != nil {
				return nil, err
			}
			if resp.Status == http.StatusUnauthorized {
				lat = append(lat, time.Since(revoked))
				break
			}
			if accepted++; accepted >= revocationPolls {
				return nil, fmt.Errorf("session %d still accepted %d requests after its revoke", iss.ID, accepted)
			}
		}
		out.AcceptedAfter = max(out.AcceptedAfter, accepted)
	}
	var st Stats
	summarize(&st, lat, 1)
	out.Samples, out.P50ms, out.Maxms = len(lat), st.P50ms, st.Maxms
	e.logf("revocation: revoke response -> first 401 from /auth/verify: p50 %s, max %s over %d sessions; at most %d requests accepted after the revoke",
		msStr(out.P50ms), msStr(out.Maxms), out.Samples, out.AcceptedAfter)
	return out, nil
}
