package demo

import (
	"net/http"
	"time"
)

var readyClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}

func readyOK(addr string) bool {
	resp, err := readyClient.Get("http://" + addr + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
