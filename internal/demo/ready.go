package demo

import (
	"io"
	"net/http"
	"strings"
	"time"
)

var readyClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}

// readyOK reports whether the sidecar whose admin server is at addr is
// ready and, when it is not, why (its /ready answer, or the error).
func readyOK(addr string) (bool, string) {
	resp, err := readyClient.Get("http://" + addr + "/ready")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode == http.StatusOK, strings.TrimSpace(string(body))
}
