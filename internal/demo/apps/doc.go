// Package apps holds weft's sample services, real programs run with
// `weft demo-app backend|greeter|frontend|load`:
//
//   - backend: an HTTP/1.1 JSON service with injectable failures and latency;
//   - greeter: a plaintext (h2c) gRPC service with a unary and a bidi method;
//   - frontend: an HTTP/1.1 service that calls backend and greeter by name
//     through the sidecar (HTTP_PROXY / HTTPS_PROXY from the environment);
//   - load: a steady traffic generator.
//
// Each app is a RunX(ctx, cfg, logger) function that serves until ctx ends.
// Apps speak plaintext: the sidecar does mTLS and tells them who called in
// the x-forwarded-client-cert header, which they echo back as "caller".
package apps
