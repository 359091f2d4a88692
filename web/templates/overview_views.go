package templates

import (
	"fmt"
	"strconv"
)

// OverviewPage is the overview: the sessions at a glance, over a range of time.
type OverviewPage struct {
	Page
	// Ranges are the choices of range (24h, 7d, 30d), the current one Selected.
	Ranges []RangeLink
	// RangeText names the range in words ("the last 24 hours"); Step "hour" or "day".
	RangeText, Step string
	// Tiles are the headline figures.
	Tiles []Tile
	// Charts are the three charts as rendered by ChartCards: trusted markup, written as is.
	Charts string
	// TopUsers are the users holding the most active sessions; TopCountedAt when counted
	// (relative), "" when never.
	TopUsers     []TopUser
	TopCountedAt string
	// Jobs are the background jobs that keep the history, with how they last did; HealthIssues
	// counts those that failed or are late.
	Jobs         []JobHealth
	HealthIssues int
	// Policy are the policy rules' counts; PolicyNote says why there are none.
	Policy     []PolicyCount
	PolicyNote string
}

// RangeLink is one choice of range.
type RangeLink struct {
	Label, URL string
	Selected   bool
}

// Tile is one headline figure, linking to what it counts.
type Tile struct {
	Label, Value, Note, URL, TestID string
}

// Chart is one chart and its numbers: bars (stacked by series) or a line, in an SVG whose
// coordinates are computed here (0..100 high, 10 per bucket wide), and the same numbers as
// a table.
type Chart struct {
	ID, Title, Desc string
	// ListURL is the list the chart summarises.
	ListURL, ListText string
	// Series are the bars' stacks (bottom first) or the one line.
	Series []ChartSeries
	// Buckets are the columns: their label, link and values (one per series).
	Buckets []ChartBucket
	// Line: draw Series[0] as a line instead of bars.
	Line bool
	// Max is the value at the top of the chart; Width the viewBox's width.
	Max   int64
	Width int
	// From and To label the x axis.
	From, To string
	// Points is the line's polyline (Line charts).
	Points string
}

// ChartSeries is one series: its name, CSS class (its colour) and total over the range.
type ChartSeries struct {
	Name, Class, Total string
}

// ChartBucket is one hour or day.
type ChartBucket struct {
	Label, URL string
	// Values are the bucket's numbers, one per series, as shown.
	Values []string
	// Rects are the bar's stacked rectangles (bar charts).
	Rects []ChartRect
}

// ChartRect is one rectangle of a bar.
type ChartRect struct {
	X, Y, W, H string
	Class      string
	Title      string
}

// ViewBox is the chart's SVG viewBox.
func (c Chart) ViewBox() string { return fmt.Sprintf("0 0 %d 100", c.Width) }

// MaxText and HalfText label the y axis.
func (c Chart) MaxText() string  { return strconv.FormatInt(c.Max, 10) }
func (c Chart) HalfText() string { return strconv.FormatFloat(float64(c.Max)/2, 'f', -1, 64) }

// TopUser is one user and their active sessions.
type TopUser struct {
	Username, URL, Active string
}

// JobHealth is one background job on the overview.
type JobHealth struct {
	Name, What, LastSuccess, Problem string
}

// PolicyCount is one policy rule and how many sessions or users break it.
type PolicyCount struct {
	Name, URL, Count string
	Breached         bool
}

// countedNote is " 3m ago" (when counted), or "" when never counted.
func countedNote(rel string) string {
	if rel == "" {
		return ""
	}
	return " " + rel
}

// plural is "1 job needs" or "3 jobs need".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
