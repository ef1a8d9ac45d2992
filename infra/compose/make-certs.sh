#!/usr/bin/env bash
# Certificates for compose.yaml, self-signed (put a CA-issued certificate in public.pem for real use):
#   public.pem                what HAProxy presents for PUBLIC_NAME: certificate then key
#   public.crt                that certificate alone: devices' and relays' --ca-file, or its fingerprint
#   internal.crt, internal.key  shared by the three brokers (names broker1..3); HAProxy and the relays
#                             trust it, so the hop behind the proxy is verified TLS too
# usage: make-certs.sh PUBLIC_NAME [DIR]     (DIR: default certs/ beside this script)
# Run it as root: the brokers (uid 10001) must read internal.key, and only root can give it to them.
set -euo pipefail
name="${1:?usage: make-certs.sh PUBLIC_NAME [DIR]}"
dir="${2:-$(cd "$(dirname "$0")" && pwd)/certs}"
mkdir -p "$dir"
umask 077
san() { if [[ "$1" =~ ^[0-9.]+$ || "$1" == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi; }
cert() { # CN SANs KEY CRT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=$1" \
    -addext "subjectAltName=$2" -keyout "$3" -out "$4" 2>/dev/null
}
cert "$name" "$(san "$name")" "$dir/public.key" "$dir/public.crt"
cat "$dir/public.crt" "$dir/public.key" >"$dir/public.pem"
rm -f "$dir/public.key"
cert trellis-broker "DNS:broker1,DNS:broker2,DNS:broker3" "$dir/internal.key" "$dir/internal.crt"
chmod 0644 "$dir/public.crt" "$dir/internal.crt"
chmod 0755 "$dir"
if [ "$(id -u)" -eq 0 ]; then
  chown 10001:10001 "$dir/internal.key"
else
  echo "not root: run 'sudo chown 10001:10001 $dir/internal.key' so the brokers can read it" >&2
fi
printf 'public certificate for %s: %s\n' "$name" "$dir/public.crt"
printf 'devices: trellis up --broker https://%s --fingerprint %s\n' "$name" \
  "$(openssl x509 -noout -fingerprint -sha256 -in "$dir/public.crt" | cut -d= -f2)"
