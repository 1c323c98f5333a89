#!/usr/bin/env bash
# Installs the system packages the tests need when they are missing: PostgreSQL's server binaries (the tests
# start a throwaway cluster), nginx (the load balancer of the end-to-end tests), and Chromium with its
# driver (the page's browser test). Java 17 and Maven are required for the local Kafka broker.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing+=(nginx-light)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "system-deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "system-deps: apt-get install ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "system-deps: '$tool' is required (OpenJDK 17 and Maven)" >&2; exit 1; }
done
