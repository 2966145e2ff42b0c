# The ingest node. Node 20 on Debian 12 (glibc 2.36): the uWebSockets.js build we pin loads there.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json moleculer.config.ts ./
COPY config ./config
COPY actors ./actors
COPY nodes ./nodes
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production PORT=8080 DATA_DIR=/data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./package.json
COPY config/schemas ./config/schemas
EXPOSE 8080
# SIGTERM drains the node (finishes in-flight batches) within SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
# The image runs cluster nodes (docker-compose.yml), so it has the V8 flags of `npm run
# start:cluster` (package.json): a 64 MB young generation, large enough that the events a batch
# holds while it waits for storage die young, small enough that a node with 100,000 live
# sessions stays under 400 MB (README.md, "Launch flags"). Single-process: `npm start`'s 128.
CMD ["node", "--max-semi-space-size=64", "dist/nodes/node.js"]
