#!/usr/bin/env bash
# Installs the Debian packages a selfmail mail host needs, on Debian 13 or Debian 12: the servers
# (Postfix, Dovecot, NSD, unbound, nginx, fail2ban, OpenSSH, rspamd and its Redis), the tools selfmail checks
# and signs with (ldns, BIND's checkers, nftables), and what keeps the host up on its own
# (certbot for the certificate, python3-systemd for fail2ban's journal jails), and iproute2, with
# which `selfmail rehearse` gives itself a network of its own.
#
#   bash scripts/install-debian-packages.sh           a mail host (or the machine running selfmail init)
#   bash scripts/install-debian-packages.sh --tests   the same plus what the test suite drives them with
#
# Needs root. No daemon is started by the installation (policy-rc.d): `selfmail apply` starts
# them once their configuration is in place, so no Debian default (Dovecot's snakeoil TLS, an
# open nginx site) ever serves in between.
set -euo pipefail
tests=no
for arg in "$@"; do
  case "$arg" in
    --tests) tests=yes ;;
    *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (apt-get install needs it)" >&2
  exit 1
fi
version=$(. /etc/os-release 2>/dev/null && echo "${ID:-}-${VERSION_ID:-}")
case "$version" in
  debian-13) nginx=nginx ;;
  debian-12) nginx=nginx-light ;;
  *) echo "selfmail supports Debian 13 and Debian 12; this system is ${version:-unknown}" >&2; exit 1 ;;
esac
packages=(
  postfix dovecot-core dovecot-imapd dovecot-lmtpd nsd ldnsutils
  bind9-utils bind9-dnsutils unbound dns-root-data nftables openssh-server fail2ban python3-systemd
  "$nginx" certbot openssl ca-certificates passwd rspamd redis-server
  dovecot-sieve dovecot-managesieved iproute2 wireguard-tools
)
if [ "$tests" = yes ]; then
  # swaks and GNU time for the suite and the benchmarks; debootstrap and systemd-nspawn
  # for the pristine-host tier, which boots fresh Debian roots in network namespaces of its own;
  # testssl.sh, the independent scanner the tier points at every TLS port; miniupnpd, the
  # router with UPnP left on that doctor's upnp check must find (run only inside the test's
  # namespaces, never started as a service here); age, the user's own tool, which the suite
  # makes identities with and opens the backups with, beside selfmail's own age library; gnupg,
  # the user's own tool again, with which the suite makes the OpenPGP keys users publish and checks
  # what selfmail publishes against GnuPG's own view (export-dane, gpg-wks-client's WKD hash);
  # curl, which fetches a published key from the Web Key Directory as a mail client would;
  # wireguard-go, the userspace WireGuard the own-VPS tests run where the kernel has no module.
  packages+=(swaks time debootstrap systemd-container testssl.sh miniupnpd miniupnpd-nftables age gnupg curl wireguard-go)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "Debian packages: all present"
  exit 0
fi
# Keep package scripts from starting the daemons before selfmail has configured them.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
