# syntax=docker/dockerfile:1
# rabbitbatch: the operator and the CLI in one image.
#   docker build -t ghcr.io/rabbitbatch/rabbitbatch:0.1.0 .
#   docker run --rm ghcr.io/rabbitbatch/rabbitbatch:0.1.0 --help
# deploy/default runs it with `operator --metrics-bind-address=:8080
# --health-probe-bind-address=:8081 --leader-elect`. test/unit/deploy-image.test.ts builds the
# same layout without a container engine and runs its entry point as this file does.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript, then drop the dev dependencies -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: Node 24, production dependencies, compiled output, non-root -------------------
FROM ${NODE_IMAGE} AS runtime
# Two glibc malloc arenas instead of one per thread (the V8 and libuv worker threads each got
# their own): a few MB less RSS, no measurable cost (bench/memory.ts). V8's young generation is
# capped by the CLI itself (src/cli/young-generation.ts); the old generation's cap goes with the
# container's memory limit, so deploy/ sets it in NODE_OPTIONS beside that limit.
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
# Files owned by root and not writable by the runtime user: with readOnlyRootFilesystem in the
# Deployment nothing is writable anyway, but a process running without it cannot modify itself.
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
# 65532 is the conventional "nonroot" uid (distroless); the Deployment's securityContext uses it too.
USER 65532:65532
# /metrics, /healthz and /readyz.
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["operator", "--leader-elect"]
