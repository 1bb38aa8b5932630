package cli

import (
	"strings"
	"testing"

	"weft.dev/weft/internal/proxy/outbound"
)

func TestParseUpstreams(t *testing.T) {
	for _, tc := range []struct {
		specs []string
		want  []outbound.Upstream
		err   string
	}{
		{specs: []string{"db:5432=15432"}, want: []outbound.Upstream{{Service: "db", Port: 5432, LocalPort: 15432}}},
		{specs: []string{"db.data:5432", "smtp:25=0"}, want: []outbound.Upstream{{Service: "db.data", Port: 5432}, {Service: "smtp", Port: 25}}},
		{specs: []string{"db"}, err: `--upstream "db": want SERVICE[.NS]:PORT[=LOCAL_PORT]`},
		{specs: []string{"db:"}, err: `--upstream "db:": port: "" is not a port number (1-65535)`},
		{specs: []string{"db:0"}, err: `port: "0" is not a port number`},
		{specs: []string{"db:65536"}, err: `port: "65536"`},
		{specs: []string{"db:5432=-1"}, err: `local port: "-1" is not a port number (0-65535)`},
		{specs: []string{"Db:1"}, err: `service "Db"`},
		{specs: []string{"db.x_y:1"}, err: `namespace "x_y"`},
		{specs: []string{"db:1=7000", "mq:2=7000"}, err: `--upstream "mq:2=7000": local port 7000 is already used by --upstream "db:1=7000"`},
	} {
		got, err := parseUpstreams(tc.specs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.specs, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.specs, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.specs, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %+v, want %+v", tc.specs, got, tc.want)
			}
		}
	}
}
