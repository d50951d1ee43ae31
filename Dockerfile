# syntax=docker/dockerfile:1
#
# LLMGuard collector image.
#
# Written to the tested install (docs/self-hosting.md, "The Docker image"): Node 20 on
# Debian 12 (glibc 2.36), pnpm 10.34.9, the frozen lockfile. On Node 20 the local
# packages/uws selector loads @trufflesuite/uws-js-unofficial, which has Node 20 binaries and
# runs on glibc 2.36. Do not move the base image to Node 22+ on bookworm: there the selector
# loads @btc-vision/uwebsockets.js, which needs glibc >= 2.38.
# No Docker engine runs in this project's CI, so CI does not build this file.
#
#   docker build -t llmguard-collector .
#   docker run --rm -p 3000:3000 -e NODE_ENV=development -v llmguard-data:/data llmguard-collector

############################################################################ build
FROM node:20-bookworm-slim AS build
WORKDIR /src
ENV CI=true
# The same pnpm as `npx pnpm@10.34.9` in the README (and `packageManager` in package.json).
RUN npm install -g pnpm@10.34.9 && npm cache clean --force

COPY . .

# Install the collector and the workspace packages it depends on (@llmguard/shared, the uws
# selector), plus the root devDependencies that build them (tsup, typescript). The frozen
# lockfile is still checked against every workspace package.json, as in CI. The SDK's
# better-sqlite3 is not part of this install, so no compiler is needed.
RUN --mount=type=cache,id=llmguard-pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir /pnpm/store --filter "@llmguard/collector..."

RUN pnpm --filter "@llmguard/collector..." run build

# Copy the collector (package.json + dist, with the migrations) and its production
# dependencies only into /out. --legacy: the workspace does not use inject-workspace-packages.
# Then drop the uWebSockets.js binaries for macOS and Windows, which Linux never loads, and
# check that the native uWS build loads (the fallback stub would fail on `new Server()`).
RUN --mount=type=cache,id=llmguard-pnpm-store,target=/pnpm/store \
    pnpm --filter @llmguard/collector deploy --prod --legacy --store-dir /pnpm/store /out \
 && find /out/node_modules/.pnpm \( -name 'uws_darwin_*.node' -o -name 'uws_win32_*.node' \) -type f -delete \
 && cd /out && node -e "new (require('hyper-express').Server)(); console.log('uWebSockets.js: native build loads')"

########################################################################## runtime
FROM node:20-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="llmguard-collector" \
      org.opencontainers.image.description="LLMGuard collector: self-hosted LLM observability and guardrails" \
      org.opencontainers.image.licenses="Apache-2.0"

# Production mode requires DATABASE_URL, JWT_SECRET, REFRESH_TOKEN_SECRET and API_KEY_PEPPER.
# For the embedded database (development, single-node trials) run with -e NODE_ENV=development
# and a volume on /data.
ENV NODE_ENV=production \
    LLMGUARD_DATA_DIR=/data

WORKDIR /app
# Application files stay owned by root: the collector only reads them.
COPY --from=build /out /app

# The embedded database and its lock file live in /data. The `node` user (uid 1000) owns it,
# so a new named volume mounted there starts with the right owner.
RUN mkdir -p /data && chown node:node /data && chmod 700 /data
VOLUME ["/data"]

USER node
EXPOSE 3000
STOPSIGNAL SIGTERM

# Liveness: GET /healthz on PORT (default 3000) at HOST when it names one address (else loopback),
# over https when native TLS is configured.
# No curl in the slim image, so node makes the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "const m=require(process.env.TLS_CERT_FILE?'https':'http');const h=process.env.HOST;m.get({host:h&&!['0.0.0.0','::'].includes(h)?h:'127.0.0.1',port:process.env.PORT||3000,path:'/healthz',rejectUnauthorized:false,timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))"

# node runs as PID 1 and handles SIGTERM/SIGINT itself (graceful stop).
CMD ["node", "dist/main.js"]
