package tapwire

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Stream reads the events of one proxy's admin endpoint /tap at admin
// (HOST:PORT), with query q (see ParseFilter), into out until ctx ends or
// the stream does; c nil means a client that uses no HTTP proxy. It is the
// client side of the proxy's tap.Hub.ServeHTTP (weft tap, the dashboard's tap page).
func Stream(ctx context.Context, c *http.Client, admin string, q url.Values, out chan<- Event) error {
	if c == nil {
		c = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/tap?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("admin %q: %w", admin, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("proxy admin endpoint %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("proxy admin endpoint %s: GET /tap: %s: %s", admin, resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue // heartbeat
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("proxy admin endpoint %s: bad event: %w", admin, err)
		}
		select {
		case out <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("proxy admin endpoint %s: %w", admin, err)
	}
	return ctx.Err()
}
