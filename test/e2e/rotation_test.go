package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCertificateRotation: with 6 s certificates, sidecars renew at
// half-life; requests keep flowing across several renewals with none
// failing, and the certificate a sidecar serves really changes.
func TestCertificateRotation(t *testing.T) {
	c := startControl(t, "--cert-ttl", "6s")
	backend := startBackend(t, c, "v1")
	client := startClient(t, c, "client")

	eventually(t, 10*time.Second, 100*time.Millisecond, "first request", func() error {
		_, err := client.getBackend("http://backend/")
		return err
	})

	first := servedSerial(t, backend.inbound)
	var ok, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := client.getBackend("http://backend/"); err != nil {
				failed.Add(1)
				lastErr.Store(err.Error())
			} else {
				ok.Add(1)
			}
		}
	}()

	serials := map[string]bool{first: true}
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) && len(serials) < 3 {
		time.Sleep(500 * time.Millisecond)
		serials[servedSerial(t, backend.inbound)] = true
	}
	close(stop)
	wg.Wait()

	if len(serials) < 3 {
		t.Errorf("backend served %d distinct certificates in 12s with a 6s lifetime, want at least 3 (two renewals)", len(serials))
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across renewals; last: %v", n, n+ok.Load(), lastErr.Load())
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests succeeded", ok.Load())
	}

	// The config dump reports the current certificate.
	dump, err := client.configDump()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Identity struct {
			ID      string    `json:"id"`
			Expires time.Time `json:"expires"`
		} `json:"identity"`
	}
	if err := json.Unmarshal([]byte(dump), &d); err != nil {
		t.Fatalf("config_dump: %v", err)
	}
	if d.Identity.ID != client.spiffeID() || time.Until(d.Identity.Expires) > 7*time.Second || time.Until(d.Identity.Expires) <= 0 {
		t.Errorf("config_dump identity = %+v, want %s expiring within 6s", d.Identity, client.spiffeID())
	}
}

// servedSerial returns the serial of the certificate an inbound listener
// presents. The handshake itself fails (we have no client certificate), but
// the server's certificate arrives first.
func servedSerial(t *testing.T, port int) string {
	t.Helper()
	var serial string
	conf := &tls.Config{
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			serial = c.SerialNumber.String()
			return nil
		},
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr(port), conf)
	if err == nil {
		conn.Close()
	}
	if serial == "" {
		t.Fatalf("no certificate from the inbound listener: %v", errors.Join(err, fmt.Errorf("port %d", port)))
	}
	return serial
}
