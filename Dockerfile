# syntax=docker/dockerfile:1
# The tollgate image: one static binary (controller and data plane) on a
# distroless base that runs as the unprivileged "nonroot" user (65532) and
# has no shell or package manager. The Helm chart and config/ kustomizations
# run it with a read-only root filesystem.
#
#   docker build -t tollgate:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/tollgate:<tag> --push .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
# Static (no cgo), reproducible (-trimpath, no VCS stamping), cross-compiled
# for the target platform without emulation.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /out/tollgate .

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="tollgate" \
      org.opencontainers.image.description="Kubernetes-native LLM gateway: controller and data plane" \
      org.opencontainers.image.source="https://github.com/tollgate-dev/tollgate" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/tollgate /usr/local/bin/tollgate
USER 65532:65532
# Data plane: 8080 public API, 9090 admin. Controller: 8082 push, 8080
# metrics, 8081 health. The role is the first argument (`tollgate dataplane ...`).
EXPOSE 8080 8081 8082 9090
ENTRYPOINT ["/usr/local/bin/tollgate"]
