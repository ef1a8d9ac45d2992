# Shared by the quick-start and test scripts: make a fresh machine ready without asking.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PNPM_VERSION=10.34.8

log() { printf '\033[1m[trellis]\033[0m %s\n' "$*" >&2; }

ensure_node() {
  command -v node >/dev/null || { log "Node.js 20 is required (https://nodejs.org)"; exit 1; }
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || { log "Node.js >= 20 is required, found $(node --version)"; exit 1; }
}

ensure_pnpm() {
  if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
    log "installing pnpm $PNPM_VERSION"
    npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1
  fi
}

# Debian packages the agent and the lab need; installed only when a tool is missing.
ensure_system_packages() {
  local missing=()
  command -v wireguard-go >/dev/null || missing+=(wireguard-go)
  command -v wg >/dev/null || missing+=(wireguard-tools)
  command -v nft >/dev/null || missing+=(nftables)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v ping >/dev/null || missing+=(iputils-ping)
  command -v miniupnpd >/dev/null || missing+=(miniupnpd-nftables)
  command -v iperf3 >/dev/null || missing+=(iperf3) # pnpm bench relay
  command -v conntrack >/dev/null || missing+=(conntrack) # the firewall cuts flows a policy forbids
  command -v nc >/dev/null || missing+=(netcat-openbsd) # the lab's access-control tests
  command -v iptables >/dev/null || missing+=(iptables) # the lab's coexistence test (Docker-style rules)
  command -v dig >/dev/null || missing+=(bind9-dnsutils) # the DNS server is checked with a real client
  command -v unbound >/dev/null || missing+=(unbound) # the lab's recursive resolver (names test)
  command -v dbus-daemon >/dev/null || missing+=(dbus-daemon) # systemd-resolved's bus in the lab
  command -v chromium >/dev/null || missing+=(chromium) # the dashboard's browser tests (playwright-core)
  command -v dpkg-deb >/dev/null || missing+=(dpkg) # scripts/package builds the agent's .deb
  command -v systemd-analyze >/dev/null || missing+=(systemd) # the lab's .deb test verifies the unit
  command -v haproxy >/dev/null || missing+=(haproxy) # infra/test checks infra/haproxy/haproxy.cfg (haproxy -c)
  command -v openssl >/dev/null || missing+=(openssl) # infra/compose/make-certs.sh, run by infra/test
  command -v cc >/dev/null || missing+=(gcc) # a C stand-in for wireguard.dll, called through koffi (agent tests)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then log "missing ${missing[*]}: install them as root"; exit 1; fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installed services must not start (unbound would take port 53 here): the lab runs its own.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
}

# systemd-resolved for the lab's names test: unpacked, not installed. Installing it would point
# this machine's /etc/resolv.conf at a resolver that is not running here (no systemd).
LAB_RESOLVED_DIR=/var/cache/trellis-lab/systemd-resolved
ensure_lab_resolved() {
  [ -x "$LAB_RESOLVED_DIR/lib/systemd/systemd-resolved" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then log "systemd-resolved for the lab is missing: run as root"; exit 1; fi
  log "unpacking systemd-resolved for the lab into $LAB_RESOLVED_DIR"
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq systemd-resolved >/dev/null) ||
    (apt-get update -qq && cd "$tmp" && apt-get download -qq systemd-resolved >/dev/null)
  mkdir -p "$LAB_RESOLVED_DIR"
  dpkg -x "$tmp"/systemd-resolved_*.deb "$LAB_RESOLVED_DIR"
  rm -rf "$tmp"
}

install_and_build() {
  cd "$ROOT"
  log "installing npm dependencies"
  pnpm install --frozen-lockfile --reporter=silent
  log "building"
  pnpm -s build
}
