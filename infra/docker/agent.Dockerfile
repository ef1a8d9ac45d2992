# syntax=docker/dockerfile:1
# trellisd and trellis in a container: a gateway or a sidecar. It runs as root and needs
# --cap-add NET_ADMIN and --device /dev/net/tun (wireguard-go when the kernel module is absent);
# keep /var/lib/trellis (the device's key and enrollment) on a volume.
# Build from the repository root: docker build -f infra/docker/agent.Dockerfile -t trellis-agent .
FROM node:20-bookworm-slim AS build
RUN npm install -g pnpm@10.34.8
WORKDIR /src
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json tsconfig.build.json ./
COPY packages packages
COPY apps apps
COPY e2e/package.json e2e/package.json
COPY bench/package.json bench/package.json
COPY scripts/package-tree.mjs scripts/package-tree.mjs
RUN pnpm install --frozen-lockfile --reporter=silent
RUN pnpm exec tsc -b apps/agent && pnpm --filter @trellis/agent build:ui
# The same tree as the .deb's /usr/lib/trellis (scripts/package): dist with the local UI's files,
# without koffi (it calls wireguard.dll on Windows only; a Linux image leaves out every OS's binaries).
RUN pnpm --filter @trellis/agent deploy --prod --legacy --reporter=silent /out/agent \
  && find /out/agent -mindepth 1 -maxdepth 1 ! -name dist ! -name node_modules ! -name package.json \
       -exec rm -rf {} + \
  && rm -rf /out/agent/node_modules/.pnpm/node_modules/@trellis/agent \
  && rm -rf /out/agent/node_modules/.pnpm/koffi@* /out/agent/node_modules/koffi /out/agent/node_modules/.pnpm/node_modules/koffi \
  && find /out/agent -type f \( -name '*.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete \
  && node scripts/package-tree.mjs symlinks /out/agent \
  && test -f /out/agent/dist/daemon.js && test -f /out/agent/dist/cli.js

FROM node:20-bookworm-slim
# What the .deb depends on and recommends.
RUN apt-get update \
  && apt-get install -y --no-install-recommends wireguard-tools wireguard-go nftables iproute2 \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/agent /usr/lib/trellis
RUN printf '#!/bin/sh\nexec node --title=trellis /usr/lib/trellis/dist/cli.js "$@"\n' >/usr/local/bin/trellis \
  && chmod 0755 /usr/local/bin/trellis
ENV NODE_ENV=production TRELLIS_STATE_DIR=/var/lib/trellis
VOLUME /var/lib/trellis
# SIGTERM removes the interface and routes before the daemon exits.
STOPSIGNAL SIGTERM
CMD ["node", "--title=trellisd", "/usr/lib/trellis/dist/daemon.js"]
