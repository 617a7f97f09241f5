# Multi-stage build of chatd on Debian 12, with the same dependency script and
# compiler flags as the README and CI; only the two shipped binaries are built
# (not the tests): about half the time of the whole build (5.5 of ~11 minutes
# on 2 cores). Every command below also works with `podman` in place of
# `docker`; scripts/container-check.sh runs them (docs/OPERATIONS.md,
# "Containers").
#
#   scripts/web-assets.sh                   # the browser libraries, from npm, into clients/vendor/
#   docker build -t chatd .                 # --build-arg JOBS=8 on a bigger machine
#   export CHAT_ADMIN_KEY=$(openssl rand -hex 32)   # the admin key, 24+ characters
#   docker run -p 50051:50051 -e CHAT_ADMIN_KEY -v chatd-data:/var/lib/chatd chatd
#
# Off loopback, both binaries refuse to start without authentication: chat-server
# wants an admin key (CHAT_ADMIN_KEY or --admin_key_file) or API keys in its
# store, and chat-gateway asks chat-server at start-up and refuses (exit 2) if it
# would serve callers that have no key. --allow_anonymous (CHAT_ALLOW_ANONYMOUS,
# CHAT_GATEWAY_ALLOW_ANONYMOUS) opts out, on purpose. Create API keys with the
# admin key (POST /v1/admin/keys) or `chat-server keys create`.
#
# The REST gateway is in the same image, run as a second container:
#   docker network create chatd
#   docker run -d --network chatd --name chat-server -e CHAT_ADMIN_KEY \
#     -v chatd-data:/var/lib/chatd chatd
#   docker run -d --network chatd -p 8000:8000 --entrypoint chat-gateway chatd \
#     --listen=0.0.0.0:8000 --backend=chat-server:50051 --web_root=/usr/local/share/chatd
#   curl -X POST localhost:8000/v1/admin/keys -H "Authorization: Bearer $CHAT_ADMIN_KEY" \
#     -H 'Content-Type: application/json' -d '{"tenant":"acme","name":"web"}'

FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh --no-node && rm -rf /var/lib/apt/lists/*
COPY . .
ARG JOBS=2
# The browser libraries come from the build context: npm runs on the host
# (scripts/web-assets.sh), where its registry and certificates are set up.
RUN test -f clients/vendor/purify.min.js \
 || { echo "clients/vendor/ is missing: run scripts/web-assets.sh before the image build" >&2; exit 1; }
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null \
 && cmake --build build -j"$JOBS" --target chat-server chat-gateway \
 && strip build/bin/chat-server build/bin/chat-gateway

FROM debian:bookworm-slim AS runtime
# Runtime libraries only: gRPC, protobuf, Abseil, SQLite, libpq, curl, jemalloc
# (both binaries link it: cmake/Allocator.cmake).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libsqlite3-0 libpq5 libcurl4 ca-certificates \
      libabsl20220623 libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/chatd --no-create-home --shell /usr/sbin/nologin chatd \
 && install -d -o chatd -g chatd -m 0750 /var/lib/chatd
# The data directory is made empty (no shell dotfiles from /etc/skel) and owned
# by chatd, so a fresh named volume mounted on it starts empty and writable.
COPY --from=build /src/build/bin/chat-server /src/build/bin/chat-gateway /usr/local/bin/
COPY --from=build /src/clients/web /usr/local/share/chatd/web
COPY --from=build /src/clients/js /usr/local/share/chatd/js
COPY --from=build /src/clients/docs /usr/local/share/chatd/docs
COPY --from=build /src/clients/vendor /usr/local/share/chatd/vendor
USER chatd
VOLUME /var/lib/chatd
EXPOSE 50051 8000
ENV CHAT_LISTEN=0.0.0.0:50051 \
    CHAT_STORE=sqlite:/var/lib/chatd/chat.db
ENTRYPOINT ["/usr/local/bin/chat-server"]
