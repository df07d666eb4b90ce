# Multi-stage build of the posts-worker binary. Used by compose.yaml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p posts-worker --locked

FROM debian:bookworm-slim
# ca-certificates: the trust store `rediss://` URLs are verified against.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home --home-dir /app posts \
    && mkdir /data && chown posts /data
WORKDIR /app
COPY --from=build /src/target/release/posts-worker /usr/local/bin/posts-worker
COPY sample_data/raw /app/sample_data/raw
USER posts
ENTRYPOINT ["posts-worker"]
CMD ["run"]
