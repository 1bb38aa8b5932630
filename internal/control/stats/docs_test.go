package stats

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDocs: the Grafana dashboard in the docs is valid JSON whose panels
// query the metrics this package reads, and the scrape config is valid
// YAML.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../../docs/observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range []string{clientHistogram, serverHistogram, tcpConnections} {
				if strings.Contains(tg.Expr, m) {
					seen[m] = true
				}
			}
		}
		for _, want := range []string{"Requests/s", "Success rate", "Latency p99"} {
			if strings.Contains(p.Title, want) {
				seen[want] = true
			}
		}
	}
	for _, want := range []string{clientHistogram, serverHistogram, tcpConnections, "Requests/s", "Success rate", "Latency p99"} {
		if !seen[want] {
			t.Errorf("no dashboard panel shows %s", want)
		}
	}

	md, err := os.ReadFile("../../../docs/observability/prometheus.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("prometheus.md has no yaml block")
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			MetricsPath string `json:"metrics_path"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(block), &cfg); err != nil {
		t.Fatalf("scrape config: %v", err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].MetricsPath != "/metrics" {
		t.Errorf("scrape config = %+v", cfg)
	}
}
