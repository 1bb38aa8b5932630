# The weft image: one binary for the control plane (weft control), the
# injection webhook (weft inject-webhook), the injected sidecar (weft run)
# and the transparent-capture init step (weft transparent-init, which runs
# iptables; the image carries iptables-nft for it).
#
#   docker build -t registry.example.com/weft:v1 .
#   weft install --kubernetes --image registry.example.com/weft:v1 | kubectl apply --server-side -f -
#
# The Deployments and injected containers pass only arguments: the
# entrypoint is the weft binary. Pods set their own users (the control
# plane 65532, the proxy 1337, the init step root with NET_ADMIN and
# NET_RAW only); the image's default user is unprivileged.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/weft ./cmd/weft

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/weft /usr/local/bin/weft
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/weft"]
