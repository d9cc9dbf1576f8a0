#!/usr/bin/env bash
# Build the switchyard image without pulling anything: a FROM scratch image
# holding the binary, the shared libraries it links (glibc), CA certificates
# and a passwd entry. Usage: scripts/build-image.sh [BINARY] [TAG]
set -euo pipefail
bin="${1:-target/release/switchyard}"
tag="${2:-switchyard:local}"
[ -x "$bin" ] || { echo "no binary at $bin: run cargo build --release first" >&2; exit 2; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Volume mount points exist in the image, owned by the agent user, so fresh
# named volumes are writable by it.
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/switchyard" "$ctx/rootfs/etc/ssl/certs" \
  "$ctx/rootfs/var/lib/switchyard/workspace" "$ctx/rootfs/var/lib/switchyard/state" "$ctx/rootfs/tmp"
cp "$bin" "$ctx/rootfs/usr/local/bin/switchyard"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
cp config/example.toml "$ctx/rootfs/etc/switchyard/switchyard.toml"
echo 'switchyard:x:10001:10001::/var/lib/switchyard:/sbin/nologin' > "$ctx/rootfs/etc/passwd"
echo 'switchyard:x:10001:' > "$ctx/rootfs/etc/group"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY --chown=10001:10001 rootfs/ /
USER 10001
ENV SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml
ENTRYPOINT ["/usr/local/bin/switchyard"]
DOCKERFILE
docker build -q -t "$tag" "$ctx"
echo "built $tag"
