#!/usr/bin/env bash
# Installs the Debian packages whose real programs the tests use to validate and run a bundle:
# Postfix, Dovecot, OpenDKIM, NSD, ldns, BIND's checkers, unbound, nftables, OpenSSH, fail2ban,
# nginx and swaks. Needs root. Services are not started (policy-rc.d), only their programs used.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (apt-get install needs it)" >&2
  exit 1
fi
packages=(
  postfix dovecot-core dovecot-imapd dovecot-lmtpd opendkim opendkim-tools nsd ldnsutils
  bind9-utils bind9-dnsutils unbound nftables openssh-server fail2ban nginx-light swaks openssl
  dns-root-data time
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "Debian packages: all present"
  exit 0
fi
# Keep package scripts from starting the daemons: the tests start their own, on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
