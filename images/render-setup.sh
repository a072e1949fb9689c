#!/usr/bin/env bash
# Make this machine able to render the gateway's reports and statements as PDF.
#
# WeasyPrint lays text out with Pango, and the reports are in Chinese: a CJK font
# must be installed (Debian's fonts-wqy-microhei, embedded in every PDF made here).
# Idempotent: installs only what is missing, from Debian's packages, as root;
# otherwise says what to install. The gateway runs without them: a PDF request
# then answers 503 with the same advice.
set -euo pipefail

say() { printf 'render-setup: %s\n' "$*" >&2; }

need=()
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || need+=(libpango-1.0-0 libpangoft2-1.0-0)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "PDF reports need ${need[*]}: install them (apt-get install ${need[*]})"
  exit 0
fi
say "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
