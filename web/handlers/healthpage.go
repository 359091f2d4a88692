package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sessionconsole/console/sessionstore"
	"github.com/sessionconsole/console/web/templates"
)

func (h *Handler) showHealthPage(c echo.Context) error {
	ctx := c.Request().Context()
	counts, err := h.sessions.Counts(ctx, sessionstore.Filter{})
	if err != nil {
		return err
	}
	bg := h.cfg.Background
	hl, err := h.history.Health(ctx, counts.Total(), bg.PurgeTTL, bg.PurgeEvery)
	if err != nil {
		return err
	}
	now := hl.Now
	v := templates.HealthPage{
		Page:          h.page(c, "Health", "health"),
		TTL:           sessionstore.FormatDuration(hl.Purge.TTL),
		Every:         sessionstore.FormatDuration(hl.Purge.Every),
		PurgeOff:      hl.Purge.Off,
		SettingsNote:  hl.SettingsNote,
		LiveRows:      thousands(hl.LiveRows),
		LiveCountedAt: templates.Relative(counts.At, now),
		OldestEnded:   optTime(hl.OldestEnded, now),
		LastPurge:     optTime(hl.LastPurgeSeenAt, now),
		PurgedTotal:   thousands(hl.PurgedRows),
		Warnings:      hl.Warnings,
	}
	switch {
	case hl.Purge.ByConsole:
		v.Purger, v.PurgeSource = "The console (PostgreSQL)", "--purge-ttl and --purge-interval"
	case hl.Purge.FromCluster:
		v.Purger, v.PurgeSource = "CockroachDB", "its cluster settings"
	default:
		v.Purger, v.PurgeSource = "CockroachDB", "CockroachDB's defaults: the settings could not be read"
	}
	if hl.LastPurgeSeenAt != nil {
		v.LastPurgeRows = plural(hl.LastPurgeSeenRows, "row")
	}
	for _, s := range hl.Settings {
		v.Settings = append(v.Settings, templates.Setting{Name: s.Name, Value: s.Value})
	}
	for _, d := range hl.Days {
		v.Days = append(v.Days, templates.DayRow{Day: d.Day.Format("2006-01-02"), Created: thousands(d.Created),
			Ended: thousands(d.Ended), Purged: thousands(d.Purged)})
	}
	if bg.Jobs != nil {
		st, err := bg.Jobs(ctx)
		if err != nil {
			return err
		}
		for _, j := range st {
			v.Jobs = append(v.Jobs, templates.JobRow{Name: j.Job, Holder: j.Holder, Held: j.LeaseExpiresAt.After(now),
				Runs: strconv.FormatInt(j.Runs, 10), LeaseExpires: timeCell(j.LeaseExpiresAt, now),
				LastStarted: optTime(j.LastStartedAt, now), LastFinished: optTime(j.LastFinishedAt, now),
				LastHolder: j.LastHolder, LastError: j.LastError, LastDetail: j.LastDetail})
		}
	}
	return h.render(c, http.StatusOK, templates.HealthView(v))
}
