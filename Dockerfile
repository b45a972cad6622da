# Build: docker build -t linkledger .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app linkledger
WORKDIR /app
COPY --from=build /src/target/release/linkledger /usr/local/bin/linkledger
COPY config ./config
COPY jobs ./jobs
COPY examples/jobs ./examples/jobs
USER linkledger
EXPOSE 9187 8089
ENTRYPOINT ["linkledger"]
CMD ["run"]
