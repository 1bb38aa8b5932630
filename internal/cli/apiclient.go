package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/controlplane"
)

// apiClient talks to the control plane's HTTPS API with the admin token.
type apiClient struct {
	base  string // https://host:port
	token string
	http  *http.Client
	// roots are the certificates the client trusts (weft check reads
	// their validity).
	roots []*x509.Certificate
}

// apiClient reaches the control plane the global flags name: --control-api,
// or --control https://HOST:PORT, or $WEFT_CONTROL, else the connection file
// in --data-dir; trusting --ca (or $WEFT_CA), else the data dir's ca.pem.
// With the URL, the CA file and $WEFT_ADMIN_TOKEN, no data dir is needed.
func (g *globalFlags) apiClient() (*apiClient, error) {
	addr := g.controlAPI
	if addr == "" && g.control != "" {
		if !strings.HasPrefix(g.control, "https://") {
			return nil, fmt.Errorf("--control %q: this command talks to the control plane's API: pass its URL, --control https://HOST:PORT (the --api-listen port, 15000 by default)", g.control)
		}
		addr = g.control
	}
	if addr == "" {
		addr = os.Getenv("WEFT_CONTROL")
	}
	caFile := g.caFile
	if caFile == "" {
		caFile = os.Getenv("WEFT_CA")
	}
	return dialAPI(g.dataDir, addr, caFile)
}

// dialAPI builds the client for addr (host:port or https://host:port; ""
// for the data dir's connection file), trusting caFile ("" for the data
// dir's bundle), with the admin token of $WEFT_ADMIN_TOKEN or the data dir.
func dialAPI(dataDir, addr, caFile string) (*apiClient, error) {
	if addr == "" {
		conn, err := connfile.Read(dataDir)
		if err != nil {
			return nil, err
		}
		addr = conn.API
	}
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		addr = strings.TrimSuffix(rest, "/")
	} else if strings.Contains(addr, "://") {
		return nil, fmt.Errorf("control plane API %q: the API speaks https://", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control plane API address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // a wildcard listen address: reach it over loopback
	}
	var certs []*x509.Certificate
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		if certs, err = connfile.ParsePEMCerts(pemBytes); err != nil {
			return nil, fmt.Errorf("--ca %s: %w", caFile, err)
		}
	} else if certs, err = connfile.ReadBundle(dataDir); err != nil {
		return nil, fmt.Errorf("%w (the control plane writes it into its --data-dir; elsewhere, pass its copy with --ca)", err)
	}
	roots := x509.NewCertPool()
	for _, c := range certs {
		roots.AddCert(c)
	}
	token := os.Getenv("WEFT_ADMIN_TOKEN")
	if token == "" {
		if token, err = connfile.ReadToken(dataDir, connfile.AdminTokenFile); err != nil {
			return nil, fmt.Errorf("%w (set WEFT_ADMIN_TOKEN or use the control plane's --data-dir)", err)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The server certificate always names the control plane by this DNS
	// name, whatever address it is reached at; verify against the bundle.
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: controlplane.ServerName, MinVersion: tls.VersionTLS12}
	tr.Proxy = nil
	return &apiClient{
		base:  "https://" + net.JoinHostPort(host, port),
		token: token,
		http:  &http.Client{Transport: tr, Timeout: 30 * time.Second},
		roots: certs,
	}, nil
}

// do sends a request and decodes a 2xx JSON answer into out (if not nil); a
// non-2xx answer becomes an error carrying the server's message.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	_, err := c.doHeader(ctx, method, path, body, out)
	return err
}

// doHeader is do that also returns the answer's header.
func (c *apiClient) doHeader(ctx context.Context, method, path string, body []byte, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("reaching the control plane at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading control plane response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e apiserver.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("control plane answered %s", resp.Status)
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decoding control plane response: %w", err)
	}
	return resp.Header, nil
}

// getJSON GETs path and decodes the JSON answer into out.
func (c *apiClient) getJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func resourcePath(kind, namespace, name string) string {
	p := "/api/v1/resources/" + url.PathEscape(kind)
	if namespace != "" {
		p += "/" + url.PathEscape(namespace)
	}
	return p + "/" + url.PathEscape(name)
}

// get returns one object; namespace is ignored for cluster-scoped kinds.
func (c *apiClient) get(ctx context.Context, kind, namespace, name string) (api.Object, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, resourcePath(kind, namespace, name), &raw); err != nil {
		return nil, err
	}
	return api.Unmarshal(raw)
}

// list returns the objects of kind in namespace ("" for all namespaces).
func (c *apiClient) list(ctx context.Context, kind, namespace string) ([]api.Object, error) {
	path := "/api/v1/resources/" + url.PathEscape(kind)
	if namespace != "" {
		path += "?namespace=" + url.QueryEscape(namespace)
	}
	var resp apiserver.ListResponse
	if err := c.getJSON(ctx, path, &resp); err != nil {
		return nil, err
	}
	objs := make([]api.Object, 0, len(resp.Items))
	for _, raw := range resp.Items {
		o, err := api.Unmarshal(raw)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// delete removes one object.
func (c *apiClient) delete(ctx context.Context, kind, namespace, name string) error {
	return c.do(ctx, http.MethodDelete, resourcePath(kind, namespace, name), nil, nil)
}
