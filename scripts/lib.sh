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
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then log "missing ${missing[*]}: install them as root"; exit 1; fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_and_build() {
  cd "$ROOT"
  log "installing npm dependencies"
  pnpm install --frozen-lockfile --reporter=silent
  log "building"
  pnpm -s build
}
