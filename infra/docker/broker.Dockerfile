# syntax=docker/dockerfile:1
# trellis-broker: HTTPS API and control WebSocket (8443), endpoint reflector (UDP 41641), the zone's
# DNS server (here on 5353, UDP and TCP: a non-root process; map 53 to it outside).
# Build from the repository root: docker build -f infra/docker/broker.Dockerfile -t trellis-broker .
FROM node:20-bookworm-slim AS build
RUN npm install -g pnpm@10.34.8
WORKDIR /src
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json tsconfig.build.json ./
COPY packages packages
COPY apps apps
COPY e2e/package.json e2e/package.json
COPY bench/package.json bench/package.json
COPY scripts/package-tree.mjs scripts/package-tree.mjs
# Install scripts stay off (pnpm-workspace.yaml: onlyBuiltDependencies is empty).
RUN pnpm install --frozen-lockfile --reporter=silent
RUN pnpm exec tsc -b apps/broker && pnpm --filter @trellis/dashboard build
# As scripts/package does for the agent's .deb: the app, its workspace packages and npm dependencies
# in one tree; only what runs is kept (dist, the SQL migrations, package.json, node_modules).
RUN pnpm --filter @trellis/broker deploy --prod --legacy --reporter=silent /out/broker \
  && find /out/broker -mindepth 1 -maxdepth 1 ! -name dist ! -name drizzle ! -name node_modules \
       ! -name package.json -exec rm -rf {} + \
  && find /out/broker -type f \( -name '*.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete \
  && node scripts/package-tree.mjs symlinks /out/broker \
  && test -f /out/broker/dist/cli.js \
  && mkdir -p /out/dashboard && cp -r apps/dashboard/dist /out/dashboard/dist

FROM node:20-bookworm-slim
# The broker finds the dashboard at ../dashboard/dist beside its own directory.
COPY --from=build /out /opt/trellis
COPY infra/docker/healthz.js /opt/trellis/healthz.js
# `docker exec … trellis-broker relay-token create NAME`: the admin CLI, on this instance's data dir.
RUN printf '#!/bin/sh\nexec node /opt/trellis/broker/dist/cli.js "$@"\n' >/usr/local/bin/trellis-broker \
  && chmod 0755 /usr/local/bin/trellis-broker \
  && groupadd --system --gid 10001 trellis \
  && useradd --system --uid 10001 --gid trellis --home-dir /var/lib/trellis-broker trellis \
  && install -d -o trellis -g trellis -m 0700 /var/lib/trellis-broker
USER trellis
ENV NODE_ENV=production TRELLIS_DATA_DIR=/var/lib/trellis-broker
VOLUME /var/lib/trellis-broker
EXPOSE 8443/tcp 41641/udp 5353/udp 5353/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "/opt/trellis/healthz.js", "https://127.0.0.1:8443/healthz"]
# DATABASE_URL (PostgreSQL) is read from the environment; without it PGlite in the data directory.
ENTRYPOINT ["node", "/opt/trellis/broker/dist/cli.js"]
CMD ["serve", "--listen", "0.0.0.0:8443", "--dns-listen", "0.0.0.0:5353"]
