# syntax=docker/dockerfile:1
# trellis-relay: UDP allocation ports (--ports), the TLS WebSocket fallback (--tcp-listen), metrics.
# nftables and iproute2 are for --kernel-forwarding (only with CAP_NET_ADMIN; otherwise the process
# forwards). Build from the repository root:
#   docker build -f infra/docker/relay.Dockerfile -t trellis-relay .
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
RUN pnpm exec tsc -b apps/relay
RUN pnpm --filter @trellis/relay deploy --prod --legacy --reporter=silent /out/relay \
  && find /out/relay -mindepth 1 -maxdepth 1 ! -name dist ! -name node_modules ! -name package.json \
       -exec rm -rf {} + \
  && find /out/relay -type f \( -name '*.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete \
  && node scripts/package-tree.mjs symlinks /out/relay \
  && test -f /out/relay/dist/cli.js

FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends nftables iproute2 \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/relay /opt/trellis/relay
RUN groupadd --system --gid 10002 trellis-relay \
  && useradd --system --uid 10002 --gid trellis-relay --home-dir /var/lib/trellis-relay trellis-relay \
  && install -d -o trellis-relay -g trellis-relay -m 0700 /var/lib/trellis-relay
USER trellis-relay
ENV NODE_ENV=production
VOLUME /var/lib/trellis-relay
# TRELLIS_RELAY_TOKEN and TRELLIS_RELAY_BROKER come from the environment; the rest are flags.
ENTRYPOINT ["node", "/opt/trellis/relay/dist/cli.js"]
CMD ["--state-dir", "/var/lib/trellis-relay", "--metrics-listen", "0.0.0.0:9092"]
