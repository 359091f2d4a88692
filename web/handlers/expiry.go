package handlers

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sessionconsole/console/sessionstore"
)

// The issue form takes what the CLI's --expire-after takes (h, m, s) and, in the web form only,
// whole days in front (7d, 1d12h), as its 7d preset offers. The CLI's syntax stays cockroach's.

const day = 24 * time.Hour

var formDays = regexp.MustCompile(`^([0-9]{1,5})d(.*)$`)

// formExpiryHelp says what the form takes, for its error messages.
const formExpiryHelp = "use days, hours, minutes and seconds, such as 7d, 8h, 90m or 1d12h"

// parseFormExpiry parses the issue form's duration; errors are *sessionstore.ExpiryError.
func parseFormExpiry(s string) (time.Duration, error) {
	m := formDays.FindStringSubmatch(s)
	if m == nil {
		d, err := sessionstore.ParseExpiry(s)
		var e *sessionstore.ExpiryError
		if errors.As(err, &e) && strings.Contains(e.Reason, "(units h, m, s)") {
			e.Reason = formExpiryHelp // the CLI's syntax message: say what the form takes
		}
		return d, err
	}
	days, _ := strconv.Atoi(m[1])
	d := time.Duration(days) * day
	if m[2] != "" {
		rest, err := sessionstore.ParseExpiry(m[2])
		if err != nil || m[2][0] == '-' || m[2][0] == '+' {
			return 0, &sessionstore.ExpiryError{Input: s, Reason: formExpiryHelp}
		}
		d += rest
	}
	if d <= 0 {
		return 0, &sessionstore.ExpiryError{Input: s, Reason: "the expiry must be positive"}
	}
	return d, nil
}

// formatFormDuration writes a duration as the form shows it: whole days as days (744h is 31d).
func formatFormDuration(d time.Duration) string {
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return sessionstore.FormatDuration(d)
}
