# The shoprelay container image: `docker build -t shoprelay .` (docs/operations.md, "Deployment").
#
# Stage 1 builds the release binary with the toolchain the test suite runs on (pinned; a test
# compares it with the toolchain running the tests) and the committed Cargo.lock (--locked).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY testkit ./testkit
COPY erpnext_webhook_setup ./erpnext_webhook_setup
RUN cargo build --locked --release --bin shoprelay

# Stage 2: the binary alone on Debian, run by an unprivileged user. curl is for the health
# check; tzdata is the time zone database the reconcile pass reads the site's clock with.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/shoprelay --shell /usr/sbin/nologin shoprelay \
    && install -d -o shoprelay -g shoprelay -m 0700 /var/lib/shoprelay \
    && install -d -m 0755 /etc/shoprelay
COPY --from=build /src/target/release/shoprelay /usr/local/bin/shoprelay
COPY deploy/shoprelay.container.toml /etc/shoprelay/shoprelay.toml
USER shoprelay
WORKDIR /var/lib/shoprelay
# The sled database: everything the relay acknowledged lives here.
VOLUME ["/var/lib/shoprelay"]
EXPOSE 8787
# Ready means the store takes a write and a flush (503 otherwise).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "4", "-o", "/dev/null", "http://127.0.0.1:8787/readyz"]
ENTRYPOINT ["/usr/local/bin/shoprelay"]
CMD ["serve", "--config", "/etc/shoprelay/shoprelay.toml"]
