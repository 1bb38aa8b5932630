package transparent

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"
)

// maxRecord is the largest TLS plaintext record (RFC 8446 §5.1).
const maxRecord = 16384

var errGotHello = errors.New("client hello read")

// readClientHello reads the first TLS record from br (waiting at most wait)
// and returns it with the server name its ClientHello asks for ("" when
// there is none or it cannot be parsed). The record is consumed: whoever
// serves the connection must send it first.
func readClientHello(c net.Conn, br *bufio.Reader, wait time.Duration) (record []byte, serverName string, err error) {
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, "", err
	}
	defer c.SetReadDeadline(time.Time{})
	hdr, err := br.Peek(5)
	if err != nil {
		return nil, "", err
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	if n > maxRecord {
		n = 0 // not a valid record: forward the header alone, unparsed
	}
	record = make([]byte, 5+n)
	if got, err := io.ReadFull(br, record); err != nil {
		return record[:got], "", err
	}
	return record, helloServerName(record), nil
}

// helloServerName parses a ClientHello record with crypto/tls and returns
// its SNI.
func helloServerName(record []byte) string {
	var name string
	srv := tls.Server(&replayConn{r: bytes.NewReader(record)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name = h.ServerName
			return nil, errGotHello
		},
	})
	_ = srv.Handshake() // ends with errGotHello, or a parse error
	return name
}

// replayConn is a read-only connection over recorded bytes, for
// helloServerName.
type replayConn struct{ r io.Reader }

func (c *replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error)      { return 0, io.ErrClosedPipe }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }
