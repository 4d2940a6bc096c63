# syntax=docker/dockerfile:1
# Image of the copcca-sms binary; one image for every process (the command
# picks the role: migrate, serve, work, schedule, run).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# The whole workspace goes in (.dockerignore keeps target/ and .git/ out):
# the manifest names benches and tests, so cargo wants their files present.
COPY . .
# Cache mounts keep the registry and the build between image builds; the
# binary is copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin copcca-sms \
    && install -m 0755 target/release/copcca-sms /usr/local/bin/copcca-sms

FROM debian:bookworm-slim
# ca-certificates for HTTPS to Twilio, Stripe and Daraja; curl for the
# compose healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin copcca
WORKDIR /app
COPY --from=builder /usr/local/bin/copcca-sms /usr/local/bin/copcca-sms
# The binary embeds its migrations; the files are here for operators to read.
COPY migrations/ /app/migrations/
USER copcca
ENV BIND_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["copcca-sms"]
CMD ["serve"]
