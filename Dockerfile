# Realmgate container image: built with the README's production recipe, run as a non-root user
# with production dependencies only. `docker build -t realmgate .` — see README "Container".

# --- build: the production recipe (npm ci, npm run build, npm prune --omit=dev) ----------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY providers ./providers
COPY migrations ./migrations
RUN npm run build
RUN npm prune --omit=dev

# --- runtime: compiled code, production node_modules, views and assets ------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# `realmgate …` on the PATH for `docker exec` (dist/cli/main.js is executable).
RUN ln -s /app/dist/cli/main.js /usr/local/bin/realmgate \
    && mkdir -p /data && chown node:node /data
# The image's own unprivileged user (uid 1000); /data holds embedded PGlite when no DATABASE_URL.
USER node
VOLUME ["/data"]
EXPOSE 3000
# No curl in the slim image: Node's fetch asks /readyz (database reachable, migrations current).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; Realmgate drains and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
