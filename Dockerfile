# hubbub container image.
#
#   docker build -t hubbub .
#   docker run -d --name hubbub -p 8080:8080 -v hubbub-data:/var/lib/hubbub hubbub
#   docker exec hubbub hubbub org create acme          # the admin CLI, same data
#
# Configured by HUBBUB_* environment variables (docs/operations.md, 2a):
#   docker run -e HUBBUB_REDIS_URL=redis://redis:6379 -e HUBBUB_THREADS=4 ...
#
# Two stages: the first builds with the -dev packages and makes the Debian
# package (scripts/make-deb.sh); the second installs that package on a bare
# debian:12, so apt brings exactly the runtime libraries its Depends name
# (derived from the binary) and nothing to build with.
# Built and tested here without a Docker engine: the .deb, its install and
# the healthcheck script are tested by `make test` (test/packaging/deb.sh);
# `docker build` itself is not run there.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config dpkg-dev libuv1-dev libhttp-parser-dev libwslay-dev \
      libjansson-dev libssl-dev libsqlite3-dev libhiredis-dev uthash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j "$(nproc)" --target hubbub \
 && scripts/make-deb.sh build

FROM debian:12
# A fixed, unprivileged UID (10001) so that volumes and Kubernetes'
# runAsNonRoot can rely on it; the package's postinst reuses this user.
RUN groupadd --system --gid 10001 hubbub \
 && useradd --system --uid 10001 --gid hubbub --home-dir /var/lib/hubbub --no-create-home \
      --shell /usr/sbin/nologin hubbub
COPY --from=build /src/build/hubbub_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/hubbub_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/hubbub_*.deb
COPY packaging/docker-healthcheck.sh /usr/local/bin/hubbub-healthcheck

# The image is configured by the environment, not by /etc/hubbub/hubbub.json
# (mount one and set HUBBUB_CONFIG to use a file).
ENV HUBBUB_LISTEN=0.0.0.0:8080 \
    HUBBUB_DATA_DIR=/var/lib/hubbub
VOLUME /var/lib/hubbub
WORKDIR /var/lib/hubbub
EXPOSE 8080
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["hubbub-healthcheck"]
# SIGTERM: WebSockets closed with 1001, exit within 5 s (docker stop waits 10).
STOPSIGNAL SIGTERM
ENTRYPOINT ["hubbub"]
CMD ["serve"]
