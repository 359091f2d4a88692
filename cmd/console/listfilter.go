package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sessionconsole/console/internal/history"
	"github.com/sessionconsole/console/sessionstore"
)

// listFilters are `auth-session list`'s filters, named as the web console's URL parameters.
type listFilters struct {
	user, status, purged        string
	prefix, history             bool
	id                          int64
	createdAfter, createdBefore string
	expiresAfter, expiresBefore string
	usedAfter, usedBefore       string
}

func (l *listFilters) register(fl *pflag.FlagSet) {
	l.registerLive(fl)
	fl.BoolVar(&l.history, "history", false, "list the console's session history (every session it has seen, also those purged since) instead of the table, with a purged column")
	fl.StringVar(&l.purged, "purged", "", "with --history: yes (only purged sessions) or no (only those still in the table)")
}

// registerLive registers the filters of the live table only (logout's).
func (l *listFilters) registerLive(fl *pflag.FlagSet) {
	fl.StringVar(&l.user, "user", "", "only the sessions of this user")
	fl.BoolVar(&l.prefix, "prefix", false, "with --user: every user whose name starts with it")
	fl.StringVar(&l.status, "status", "", "only active, expired or revoked sessions (default: all)")
	fl.Int64Var(&l.id, "id", 0, "only the session with this ID")
	for _, b := range []struct {
		dst        *string
		name, what string
	}{
		{&l.createdAfter, "created-after", "created at or after"}, {&l.createdBefore, "created-before", "created before"},
		{&l.expiresAfter, "expires-after", "expiring at or after"}, {&l.expiresBefore, "expires-before", "expiring before"},
		{&l.usedAfter, "used-after", "last used at or after"}, {&l.usedBefore, "used-before", "last used before"},
	} {
		fl.StringVar(b.dst, b.name, "", "only sessions "+b.what+" this UTC date or date-time (2026-11-03, 2026-11-03T14:05)")
	}
}

// filter turns the flags into a store filter, in session ID order; bad values are errors that
// name the flag.
func (l *listFilters) filter() (sessionstore.Filter, error) {
	f := sessionstore.Filter{Sort: sessionstore.SortID, Username: l.user, Prefix: l.prefix, ID: l.id}
	if l.prefix && l.user == "" {
		return f, fmt.Errorf("--prefix needs --user")
	}
	st, err := sessionstore.ParseStatus(l.status)
	if err != nil {
		return f, fmt.Errorf("--status: %s", userMessage(err))
	}
	f.Status = st
	for _, b := range []struct {
		dst  *time.Time
		name string
		v    string
	}{
		{&f.CreatedAfter, "created-after", l.createdAfter}, {&f.CreatedBefore, "created-before", l.createdBefore},
		{&f.ExpiresAfter, "expires-after", l.expiresAfter}, {&f.ExpiresBefore, "expires-before", l.expiresBefore},
		{&f.UsedAfter, "used-after", l.usedAfter}, {&f.UsedBefore, "used-before", l.usedBefore},
	} {
		if b.v == "" {
			continue
		}
		t, err := sessionstore.ParseTimeBound(b.v)
		if err != nil {
			return f, fmt.Errorf("--%s: %s", b.name, userMessage(err))
		}
		*b.dst = t
	}
	if l.history {
		f.From = history.Source
		p, err := sessionstore.ParsePurged(l.purged)
		if err != nil {
			return f, fmt.Errorf("--purged: %s", userMessage(err))
		}
		f.Purged = p
	} else if l.purged != "" {
		return f, fmt.Errorf("--purged needs --history")
	}
	return f, nil
}

// userMessage is a store error's message without its "invalid input: " prefix.
func userMessage(err error) string {
	return strings.TrimPrefix(err.Error(), sessionstore.ErrInvalidInput.Error()+": ")
}
