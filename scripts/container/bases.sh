#!/usr/bin/env bash
# Makes the base images the Dockerfile and docker-compose.yml name, on a
# machine that reaches Debian's archive but no container registry:
#   debian:bookworm, debian:bookworm-slim   debootstrap + podman import
#   postgres:15                             Debian's postgresql-15 on bookworm-slim
# Idempotent: an image already in podman's store is kept (--rebuild remakes them).
# Each image is tagged under docker.io/library/ as well, the name a short name
# resolves to, so `FROM debian:bookworm` finds it without a pull.
set -euo pipefail
cd "$(dirname "$0")"

rebuild=0
[[ "${1:-}" == "--rebuild" ]] && rebuild=1

have() { ((rebuild == 0)) && podman image exists "$1"; }

# The host's Debian sources (deb822 or one-line form), without third-party ones.
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security
if grep -rhq '^URIs: .*debian-security' /etc/apt/sources.list.d/ 2>/dev/null; then
  security=$(grep -rh '^URIs: .*debian-security' /etc/apt/sources.list.d/ | head -1 | awk '{print $2}')
fi
if m=$(grep -rh '^URIs: .*/debian/\?$' /etc/apt/sources.list.d/ 2>/dev/null | head -1 | awk '{print $2}') && [[ -n "$m" ]]; then
  mirror=$m
elif m=$(grep -h '^deb .*/debian/\? bookworm ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}') && [[ -n "$m" ]]; then
  mirror=$m
fi

import() {  # import DIR NAME CHANGES...
  local dir=$1 name=$2
  shift 2
  # Fully qualified: a short name would resolve to whichever of the two tags
  # exists, and --rebuild would leave the old image under the other.
  tar --numeric-owner -C "$dir" -c . |
    podman import "$@" - "docker.io/library/$name" >"$work/import.log" 2>&1 ||
    { cat "$work/import.log"; exit 1; }
  podman tag "docker.io/library/$name" "localhost/$name"
}

if ! have debian:bookworm || ! have debian:bookworm-slim; then
  work=$(mktemp -d /var/tmp/chatd-bases.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  echo "debootstrap bookworm from $mirror ..."
  # minbase: what the official image holds (essential packages and apt).
  debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -f "$work/root/etc/apt/sources.list"
  cat >"$work/root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/archives/"*.deb \
    "$work/root/var/log/"*.log "$work/root/var/log/apt/"*
  echo "" >"$work/root/etc/resolv.conf"
  : >"$work/root/etc/hostname"
  import "$work/root" debian:bookworm --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

  # slim: as the official bookworm-slim, no manuals, docs or locales, and dpkg
  # told not to install them later.
  cat >"$work/root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
DPKG
  find "$work/root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$work/root/usr/share/man/"* "$work/root/usr/share/info/"* "$work/root/usr/share/locale/"* \
    "$work/root/usr/share/lintian/"* "$work/root/usr/share/groff/"*
  import "$work/root" debian:bookworm-slim --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  echo "made debian:bookworm and debian:bookworm-slim"
fi

if ! have postgres:15; then
  echo "building postgres:15 from Debian's postgresql-15 ..."
  no_cache=()
  ((rebuild == 0)) || no_cache=(--no-cache)
  podman build --pull=never "${no_cache[@]}" -t docker.io/library/postgres:15 postgres/ \
    >"${TMPDIR:-/tmp}/chatd-postgres-build.log" 2>&1 ||
    { tail -30 "${TMPDIR:-/tmp}/chatd-postgres-build.log"; exit 1; }
  rm -f "${TMPDIR:-/tmp}/chatd-postgres-build.log"
  podman tag docker.io/library/postgres:15 localhost/postgres:15
  echo "made postgres:15"
fi
