package stats

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// MinOwnFailureRate is the fraction of its requests a service must fail on
// its own to be named a culprit: below it, failures are noise.
const MinOwnFailureRate = 0.01

// Verdict names a service whose own failures cause errors, and the
// services whose errors come from it.
type Verdict struct {
	// Culprit is the failing service.
	Culprit string `json:"culprit"`
	// FailureRate is the fraction (0..1) of the requests it answered that
	// failed on its own account, not because its calls failed.
	FailureRate float64 `json:"failureRate"`
	// Callers are the services whose failures come, through failing calls,
	// from the culprit.
	Callers []string `json:"callers"`
	// Text says it in words.
	Text string `json:"text"`
}

// Analyze singles out the services whose own failures cause the errors in
// the graph. A service's own failures are the failures it answered minus
// the failures of the calls it made (a caller that only passes a failure
// on answers one failure per failed call, or fewer); a service is a
// culprit when they are at least MinOwnFailureRate of its requests and at
// least half of its failures. A service served by another's workloads
// (Node.ServedBy) passes its failures on to that one. Every service whose
// calls fail is listed as
// a caller of the culprits it reaches along failing edges (a culprit too:
// some of its failures may come from further down). Verdicts come worst
// first.
func Analyze(nodes []Node, edges []Edge) []Verdict {
	byName := map[string]Node{}
	for _, n := range nodes {
		byName[n.Service] = n
	}
	failing := map[string][]string{} // source -> destinations of failing edges
	for _, e := range edges {
		if e.Failures > 0 {
			failing[e.Source] = append(failing[e.Source], e.Destination)
		}
	}
	for _, n := range nodes {
		if n.ServedBy != "" && n.Inbound.Failures > 0 {
			failing[n.Service] = append(failing[n.Service], n.ServedBy)
		}
	}
	culprit := func(n Node) bool {
		in := n.Inbound
		return in.Requests > 0 && n.OwnFailures >= MinOwnFailureRate*in.Requests && n.OwnFailures*2 >= in.Failures
	}
	verdicts := []Verdict{}
	index := map[string]int{}
	for _, n := range nodes {
		if culprit(n) {
			index[n.Service] = len(verdicts)
			verdicts = append(verdicts, Verdict{Culprit: n.Service, FailureRate: round(n.OwnFailures/n.Inbound.Requests, 1000), Callers: []string{}})
		}
	}
	for _, n := range nodes {
		if n.Outbound.Failures == 0 {
			continue
		}
		// Walk the failing edges from n to the culprits they reach.
		seen := map[string]bool{n.Service: true}
		stack := slices.Clone(failing[n.Service])
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[d] {
				continue
			}
			seen[d] = true
			if i, ok := index[d]; ok {
				verdicts[i].Callers = append(verdicts[i].Callers, n.Service)
			}
			stack = append(stack, failing[d]...)
		}
	}
	for i := range verdicts {
		v := &verdicts[i]
		slices.Sort(v.Callers)
		v.Text = fmt.Sprintf("%s is failing %s of requests", v.Culprit, percent(v.FailureRate))
		if len(v.Callers) > 0 {
			v.Text += fmt.Sprintf("; %s come from %s", possessive(v.Callers), v.Culprit)
		}
	}
	slices.SortStableFunc(verdicts, func(a, b Verdict) int {
		return cmp.Or(cmp.Compare(b.FailureRate, a.FailureRate), cmp.Compare(a.Culprit, b.Culprit))
	})
	return verdicts
}

// percent formats a fraction as "48%" (or "0.5%" below 1%).
func percent(f float64) string {
	p := f * 100
	if p < 1 {
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.0f%%", p)
}

// possessive says "a's errors", "a's and b's errors".
func possessive(names []string) string {
	ps := make([]string, len(names))
	for i, n := range names {
		ps[i] = n + "'s"
	}
	switch len(ps) {
	case 1:
		return ps[0] + " errors"
	case 2:
		return ps[0] + " and " + ps[1] + " errors"
	}
	return strings.Join(ps[:len(ps)-1], ", ") + " and " + ps[len(ps)-1] + " errors"
}
