# syntax=docker/dockerfile:1
#
# The tousu image: one binary that is the server (`serve`, the default command), a read
# model's worker (`worker NAME`) and every operator tool (`token`, `projections`, `audit`,
# `health`). docker-compose.yml runs it in each of those roles; docs/deployment.md explains
# them.
#
#   docker build -t tousu .
#   docker run --rm -p 127.0.0.1:50051:50051 -v tousu-data:/data tousu   # embedded store in /data
#
# The build needs no protoc (the API crate compiles its .proto files with protox, in Rust)
# and no cmake (aws-lc-sys, brought in by the KurrentDB client, builds with the C compiler
# the Rust image already has).

# --- build ------------------------------------------------------------------------------
# The workspace's rust-version.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and the target directory are BuildKit caches, so a rebuild after a source
# change recompiles only what changed; the binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tousu \
    && install -m 0755 target/release/tousu /usr/local/bin/tousu

# --- runtime ----------------------------------------------------------------------------
# The binary links only glibc, libm and libgcc_s (SQLite is bundled, TLS is rustls), all in
# the slim image; ca-certificates is for TLS connections to KurrentDB and PostgreSQL.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tousu \
    && useradd --system --uid 10001 --gid tousu --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin tousu \
    && mkdir /data \
    && chown tousu:tousu /data \
    && chmod 0700 /data
COPY --from=builder /usr/local/bin/tousu /usr/local/bin/tousu

# The data directory: the embedded event log (events/), tokens.json, identity.key,
# reactions.checkpoint, the SQLite read models (read/) and the local admin socket. With
# KurrentDB and PostgreSQL it still holds the tokens, the identity key and the admin socket.
VOLUME ["/data"]
WORKDIR /data
USER tousu

# Defaults as environment rather than flags in CMD, so that the TOUSU_* variables of
# docker-compose.yml (or `docker run -e`) can change them: a flag would take precedence.
ENV TOUSU_DATA_DIR=/data \
    TOUSU_LISTEN=0.0.0.0:50051
EXPOSE 50051

# No HEALTHCHECK here: workers run this image too and have no health endpoint. The server's
# check is `tousu health --server 127.0.0.1:50051` (see docker-compose.yml).
ENTRYPOINT ["tousu"]
CMD ["serve"]
