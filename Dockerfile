# syntax=docker/dockerfile:1
#
# gpulet's container image: the agent's bundle (dist/agent/, the compiled TypeScript bundled by esbuild), its
# production node_modules, the native NVML addon and the kubelet protos, on Node.js 24 (LTS). No development tool: dev/ (the embedded API server, the kubelet
# simulator, the demo) is neither copied nor compiled. Build from the repository root:
#
#   docker build -t ghcr.io/gpulet/gpulet:0.1.0 .
#
# (ghcr.io/gpulet is a placeholder: push to your registry and set the image in daemonset/.) The image runs
# the bundled JavaScript with plain `node`, never tsx. It contains no NVIDIA library: the addon dlopen()s
# libnvidia-ml.so.1 at run time from the host driver the DaemonSet mounts (GPULET_NVML_LIBRARY), so the same
# image builds anywhere and runs with any driver version.

# ---- build: install everything, compile the addon and the TypeScript, then drop dev dependencies ----
FROM node:24-bookworm AS build
WORKDIR /src

# Toolchain for node-gyp (already in the full bookworm image; stated so the stage does not depend on it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

# node-gyp compiles against the headers shipped in this image (/usr/local/include/node) instead of
# downloading them.
ENV npm_config_nodedir=/usr/local

# Dependencies first, for layer caching. --ignore-scripts: no dependency's install script is needed to
# build (the `node` devDependency would otherwise fetch a second Node binary); the one native build, our
# addon, is run explicitly below so that a failure stops the build here.
COPY package.json package-lock.json ./
COPY scripts/ scripts/
RUN npm ci --ignore-scripts --no-audit --no-fund

# The N-API addon (native/ → build/Release/gpulet_nvml.node), with the node-gyp bundled in npm.
COPY binding.gyp ./
COPY native/ native/
RUN node "$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" rebuild \
 && test -f build/Release/gpulet_nvml.node

# The TypeScript: tsconfig.build.json compiles src/ alone into dist/src/, then scripts/bundle.ts (esbuild,
# already copied with scripts/) bundles dist/src/cli.js into dist/agent/ (dist/agent/cli.js is the entry, its
# lazy imports separate chunks); the agent imports nothing from dev/ (eslint.config.js forbids it;
# test/deploy/dockerfile.test.ts checks the build).
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build \
 && test -f dist/agent/cli.js \
 && test ! -e dist/dev

# The SBOM (CycloneDX JSON, `npm run sbom`): every npm package that ships in the image, with version, purl,
# license and integrity hash. The script installs the production tree alone (`npm ci --omit=dev`, from the
# npm cache the install above filled) and runs `npm sbom --sbom-format cyclonedx --sbom-type application`
# there: `npm sbom --omit dev` on the full tree would leave out production packages that a dev package also
# uses (npm/cli#7909). It lists npm packages only; the base image's Debian packages and Node.js itself are
# not in it (`docker buildx build --sbom=true` attests those).
RUN npm run sbom \
 && node -e "const b=require('./dist/sbom.cdx.json'); if (b.bomFormat!=='CycloneDX' || !b.components.length) process.exit(1)"

# Production dependencies only, for the runtime stage.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: Node.js 24 slim, no compiler, no npm install ----
FROM node:24-bookworm-slim AS runtime

LABEL org.opencontainers.image.title="gpulet" \
      org.opencontainers.image.description="Node-level GPU agent for Kubernetes: NVML discovery, a DRA driver (kubelet plugin, ResourceSlices, CDI) and OpenTelemetry/Prometheus GPU telemetry" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/gpulet/gpulet" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim" \
      dev.gpulet.sbom.path="/app/sbom.cdx.json" \
      dev.gpulet.sbom.format="CycloneDX JSON (npm sbom)"

# Inside the container the NVML backend and the in-cluster API are the defaults (npm start on a workstation
# keeps the mock and the embedded API server, which the image does not have); the DaemonSet sets the rest of
# the production configuration through GPULET_* variables.
# MALLOC_ARENA_MAX=2 (glibc; the image is Debian): at most two malloc arenas instead of up to eight per core for the
# libuv, V8 and gRPC threads. In the 30-minute soak (BENCHMARKS.md, footprint) RSS was ~55 MiB lower (150-155
# against 205-212 MiB) with the heap unchanged, for ~8 millicores more CPU at a 1 s cadence and none measurable
# at the production cadence (sampling 1 s, scrape 15 s, OTLP 60 s).
ENV NODE_ENV=production \
    GPULET_BACKEND=nvml \
    GPULET_KUBE_API=in-cluster \
    MALLOC_ARENA_MAX=2
WORKDIR /app

# The layout the code expects at run time, searched upward from the bundle's directory (dist/agent/): the
# version is read from <root>/package.json, the addon loader finds the root by binding.gyp and loads
# <root>/build/Release/gpulet_nvml.node, the kubelet protos are read from <root>/proto. Only the bundle of dist/
# ships (dist/src, the unbundled tsc output, is for tests and benchmarks); node_modules stays for what the bundle
# leaves external (@kubernetes/client-node, imported only for an exec credential plugin; scripts/bundle.ts) and
# is what the SBOM lists.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/binding.gyp ./binding.gyp
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/Release/gpulet_nvml.node ./build/Release/gpulet_nvml.node
COPY --from=build /src/dist/agent ./dist/agent
COPY proto/ ./proto/
# The SBOM of the npm packages above, where the dev.gpulet.sbom.path label says
# (docker run --rm --entrypoint cat <image> /app/sbom.cdx.json).
COPY --from=build /src/dist/sbom.cdx.json ./sbom.cdx.json

# Runs as root (UID 0), deliberately: on a node the agent creates unix sockets in the kubelet's root-owned
# plugin directories (/var/lib/kubelet/plugins_registry, /var/lib/kubelet/plugins) and writes CDI specs
# to /var/run/cdi, which a non-root UID cannot do. It needs root only as the owner of those directories,
# not any capability: the DaemonSet drops them all and confines it otherwise (not privileged, no privilege
# escalation, seccomp RuntimeDefault, read-only root filesystem, least-privilege RBAC, an admission policy
# limiting it to its own node's ResourceSlices).
USER 0

# Prometheus /metrics, /healthz and /readyz (GPULET_METRICS_ADDRESS, default 0.0.0.0:9400).
EXPOSE 9400

# Exec form: node is PID 1 and receives SIGTERM itself, so the agent can remove its sockets, flush
# telemetry and exit within the pod's termination grace period. Same entry as bin/gpulet.js: the bundle, whose
# module graph costs ~16 MiB less RSS than the ~250 modules of dist/src (import measured over two full GCs,
# 93 → 77 MiB; README.md). Stack traces name the bundle's minified lines; NODE_OPTIONS=--enable-source-maps maps
# them to src/*.ts through the shipped *.js.map files (not the default: ~35 MiB more RSS in the footprint benchmark).
# V8 flags (BENCHMARKS.md, footprint): --max-semi-space-size=8 caps each young-generation semi-space at 8 MiB.
# By default V8 grows the young generation to ~120 MiB committed under the agent's allocation rate (every
# sample, scrape and export allocates short-lived objects), the largest part of the agent's RSS; at 8 MiB RSS
# is ~45 MiB lower for no measurable CPU (2 MiB saves ~10 MiB more but costs ~25 % more CPU at a 1 s cadence in
# scavenges). The old generation is left to V8's default limit: the live heap is ~35 MiB and a lower limit
# would only turn a leak into a crash loop.
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/agent/cli.js"]
