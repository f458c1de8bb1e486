#!/usr/bin/env bash
# System packages pvq's tests and demo use: Fashion-MNIST (real data) and Chromium (report check).
# Skipped quietly where apt is unavailable or we are not root; pvq then reports what is missing.
set -u
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/tmp/pvq-apt.log 2>&1 \
    || echo "warning: apt-get install ${need[*]} failed (see /tmp/pvq-apt.log); tests that need them will skip"
else
  echo "warning: cannot install ${need[*]} (no apt-get or not root); tests that need them will skip"
fi
exit 0
