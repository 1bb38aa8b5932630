package connlimit

import (
	"net"
	"testing"
	"time"
)

func TestCap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan struct{}, 10)
	ln := New(inner, 2, func(c net.Conn) { c.Close(); refused <- struct{}{} })
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a := <-accepted
	<-accepted
	dial()
	select {
	case <-refused:
	case <-time.After(5 * time.Second):
		t.Fatal("third connection not refused")
	}
	if ln.Open() != 2 {
		t.Fatalf("open = %d, want 2", ln.Open())
	}
	a.Close()
	a.Close() // a second Close gives nothing back
	if ln.Open() != 1 {
		t.Fatalf("open after close = %d, want 1", ln.Open())
	}
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("connection within the cap not accepted")
	}
}
