# syntax=docker/dockerfile:1
# One image, both binaries: the manager and the webhook receiver run from it
# in two Deployments (command /manager or /webhookserver).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so source changes reuse the module layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY webhookserver/ webhookserver/
# make docker-build passes the release (VERSION) and the git commit.
ARG VERSION=devel
ARG REVISION=unknown
ENV CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH}
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    ldflags="-s -w -X github.com/leadchat/instagram-operator/internal/version.version=${VERSION} -X github.com/leadchat/instagram-operator/internal/version.revision=${REVISION}" && \
    go build -trimpath -ldflags="$ldflags" -o /out/manager ./cmd/manager && \
    go build -trimpath -ldflags="$ldflags" -o /out/webhookserver ./cmd/webhookserver

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/manager /out/webhookserver /
USER 65532:65532
ENTRYPOINT ["/manager"]
