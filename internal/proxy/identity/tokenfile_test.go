package identity

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TestFetchRereadsTokenFile: with TokenFile, every request that needs a
// token sends the file's current contents (a rotated projected token).
func TestFetchRereadsTokenFile(t *testing.T) {
	ca, target, roots := startFakeCA(t)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "weft-control"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "token")
	f := &Fetcher{Conn: conn, Token: "stale", TokenFile: file, ID: spiffeid.RequireFromString("spiffe://weft.local/ns/ns1/sa/a")}
	src := &Source{}
	for _, tok := range []string{"first", "rotated"} {
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.Fetch(ctx, src); err != nil {
			t.Fatalf("Fetch with token %q: %v", tok, err)
		}
	}
	if diff := cmp.Diff([]call{{Token: "Bearer first"}, {Token: "Bearer rotated"}}, ca.seen()); diff != "" {
		t.Errorf("CA calls (-want +got):\n%s", diff)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := f.Fetch(ctx, src); err == nil || !strings.Contains(err.Error(), "reading the token") {
		t.Errorf("Fetch without the token file: %v, want a read error", err)
	}
}
