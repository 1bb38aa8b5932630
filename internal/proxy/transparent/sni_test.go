package transparent

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

func TestReadClientHello(t *testing.T) {
	for _, tc := range []struct{ name, serverName string }{
		{"sni", "tlsapp.default"},
		{"no sni", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go tls.Client(b, &tls.Config{ServerName: tc.serverName, InsecureSkipVerify: true}).Handshake()
			br := bufio.NewReader(a)
			record, name, err := readClientHello(a, br, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.serverName {
				t.Errorf("server name %q, want %q", name, tc.serverName)
			}
			if len(record) < 5 || record[0] != 0x16 || len(record) != 5+int(record[3])<<8+int(record[4]) {
				t.Errorf("record of %d bytes is not one whole TLS record", len(record))
			}
		})
	}
}

func TestReadClientHelloTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go b.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a header promising 512 bytes, then silence
	record, name, err := readClientHello(a, bufio.NewReader(a), 50*time.Millisecond)
	if err == nil || name != "" || len(record) != 6 {
		t.Errorf("record %d bytes, name %q, err %v; want the header and the 1 byte read so far, no name, a timeout", len(record), name, err)
	}
}
