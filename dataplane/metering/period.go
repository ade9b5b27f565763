package metering

import (
	"time"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// totalStart is the start of the Total period (it never resets).
var totalStart = time.Unix(0, 0).UTC()

// PeriodStart returns the start of the period containing t, at UTC
// boundaries; weeks start on Monday. An empty period means Monthly.
func PeriodStart(p routetable.BudgetPeriod, t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case routetable.PeriodDaily:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case routetable.PeriodWeekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case routetable.PeriodTotal:
		return totalStart
	default:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	}
}

// PeriodEnd returns the end of the period that starts at start (the zero
// time for Total).
func PeriodEnd(p routetable.BudgetPeriod, start time.Time) time.Time {
	switch p {
	case routetable.PeriodDaily:
		return start.AddDate(0, 0, 1)
	case routetable.PeriodWeekly:
		return start.AddDate(0, 0, 7)
	case routetable.PeriodTotal:
		return time.Time{}
	default:
		return start.AddDate(0, 1, 0)
	}
}
