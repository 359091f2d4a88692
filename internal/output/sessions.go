package output

import (
	"strconv"
	"time"
)

// ListColumns are the columns of `auth-session list`, with cockroach's alignment.
var ListColumns = []Column{
	{Name: "username", Align: AlignLeft},
	{Name: "session ID", Align: AlignRight},
	{Name: "created", Align: AlignDefault},
	{Name: "expires", Align: AlignDefault},
	{Name: "revoked", Align: AlignDefault},
	{Name: "last used", Align: AlignDefault},
}

// HistoryColumns are `auth-session list --history`'s: ListColumns and when the session left
// the table.
var HistoryColumns = append(append([]Column{}, ListColumns...), Column{Name: "purged", Align: AlignDefault})

// NullableTimestamp prints t as Timestamp does, or NULL.
func NullableTimestamp(t *time.Time) string {
	if t == nil {
		return Null
	}
	return Timestamp(*t)
}

// ListRow renders one session as the cells of ListColumns (revoked nil prints NULL).
func ListRow(username string, id int64, created, expires time.Time, revoked *time.Time, lastUsed time.Time) []string {
	rev := Null
	if revoked != nil {
		rev = Timestamp(*revoked)
	}
	return []string{username, strconv.FormatInt(id, 10), Timestamp(created), Timestamp(expires), rev, Timestamp(lastUsed)}
}
