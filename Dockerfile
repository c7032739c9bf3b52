# syntax=docker/dockerfile:1
# Kindred: build a release binary, then ship it in a slim Debian image.

# --- builder -----------------------------------------------------------------
# Edition 2024 and sea-orm 2.0 need rustc >= 1.94.
FROM rust:1.95-bookworm AS builder
WORKDIR /build

COPY Cargo.toml Cargo.lock ./
COPY migrations ./migrations
COPY src ./src
COPY config ./config
# Declared as a target in Cargo.toml: cargo wants it present even for a release build.
COPY tests ./tests

RUN cargo build --release --locked \
    && strip target/release/kindred

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system kindred \
    && useradd --system --gid kindred --home-dir /var/lib/kindred --create-home \
         --shell /usr/sbin/nologin kindred

COPY --from=builder /build/target/release/kindred /usr/local/bin/kindred
# A reference copy for admins: the defaults are compiled in; a file of your own
# is layered over them with `--config FILE` (or KINDRED_CONFIG).
COPY --from=builder /build/config/default.toml /etc/kindred/default.toml

USER kindred
WORKDIR /var/lib/kindred
EXPOSE 8080

ENTRYPOINT ["kindred"]
CMD ["serve"]
