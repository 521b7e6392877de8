#!/usr/bin/env bash
# System tools some tests drive: Debian's chromium (the dashboard's browser test),
# bubblewrap and capsh (the sandbox's escape suite). Installed when missing and we may
# (root with apt-get); otherwise those tests skip with a reason. Safe to run again.
set -uo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v capsh >/dev/null || missing+=(libcap2-bin)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  printf '\033[1;34m==>\033[0m Installing test tools: %s\n' "${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } \
    || echo "test-deps: could not install ${missing[*]}; the tests that need them will skip" >&2
else
  echo "test-deps: ${missing[*]} missing (install them to run every test); those tests will skip" >&2
fi
exit 0
