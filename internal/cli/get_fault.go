package cli

import (
	"strconv"

	"weft.dev/weft/internal/api"
)

// faultColumns are the `weft get faultinjections` columns (o == nil: the
// headers): the delay and the abort with their shares, and how many headers
// a request must match.
func faultColumns(o api.Object) []string {
	if o == nil {
		return []string{"DELAY", "ABORT", "MATCH HEADERS"}
	}
	f := o.(*api.FaultInjection)
	share := func(p *float64) string {
		if p == nil {
			return "100%"
		}
		return strconv.FormatFloat(*p, 'f', -1, 64) + "%"
	}
	delay, abort := "<none>", "<none>"
	if d := f.Spec.Delay; d != nil {
		delay = d.FixedDelay + " " + share(d.Percentage)
	}
	if a := f.Spec.Abort; a != nil {
		abort = a.GRPCStatus
		if a.HTTPStatus != 0 {
			abort = strconv.Itoa(int(a.HTTPStatus))
		}
		abort += " " + share(a.Percentage)
	}
	headers := 0
	if f.Spec.Match != nil {
		headers = len(f.Spec.Match.Headers)
	}
	return []string{delay, abort, strconv.Itoa(headers)}
}
