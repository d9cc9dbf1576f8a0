# The switchyard image, for machines that can pull base images.
# Without a registry (air-gapped hosts, CI here) use scripts/build-image.sh,
# which builds the same image FROM scratch around a locally built binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin switchyard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/switchyard switchyard \
 && mkdir -p /var/lib/switchyard/workspace /var/lib/switchyard/state \
 && chown -R 10001 /var/lib/switchyard
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
COPY config/example.toml /etc/switchyard/switchyard.toml
USER 10001
ENV SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml
ENTRYPOINT ["/usr/local/bin/switchyard"]
