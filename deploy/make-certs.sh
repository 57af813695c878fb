#!/usr/bin/env bash
# Creates a certificate authority and one certificate per host for Understudy's tls://
# channels, with the openssl command-line tool. For first use and for tests; production
# sites may prefer their own PKI (any CA works: agents need ca.pem, HOST.pem, HOST.key).
#
#   deploy/make-certs.sh DIR HOST[,ALSO...] [HOST[,ALSO...]...]
#
# Writes DIR/ca.pem, DIR/ca.key (keep it offline), and for each HOST: DIR/HOST.pem and
# DIR/HOST.key, a P-256 key and a certificate valid for 825 days whose CN is HOST and whose
# subjectAltNames are HOST and every ALSO (pin HOST with expected_peer_name). A name that is
# an IPv4 address becomes an IP subjectAltName: an etcd member is reached by its address
# (e.g. 10.0.0.9,127.0.0.1 for a member that is also reached through a local etcd gateway,
# deploy/CLUSTER.md). Certificates serve both as server and as client certificates (agents
# present theirs to etcd). Also DIR/heartbeat.key, the pair's heartbeat secret
# (failover.heartbeat_key_file; copy it to both hosts). Existing files are kept.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR HOST[,ALSO...] [HOST[,ALSO...]...]" >&2
  exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=Understudy CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  echo "created $dir/ca.pem"
fi
if [ ! -f "$dir/heartbeat.key" ]; then
  openssl rand -hex 32 > "$dir/heartbeat.key"
  echo "created $dir/heartbeat.key"
fi
# The subjectAltName list for "name1,name2,...": IP: for IPv4 addresses, DNS: otherwise.
subject_alt_names() {
  local names list="" name
  IFS=, read -ra names <<<"$1"
  for name in "${names[@]}"; do
    if [[ $name =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then list+="${list:+,}IP:$name"; else list+="${list:+,}DNS:$name"; fi
  done
  printf '%s' "$list"
}

for spec in "$@"; do
  host=${spec%%,*}
  [ -f "$dir/$host.pem" ] && continue
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$host" \
    -keyout "$dir/$host.key" -out "$dir/$host.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$(subject_alt_names "$spec")" > "$dir/$host.ext"
  openssl x509 -req -in "$dir/$host.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -extfile "$dir/$host.ext" -out "$dir/$host.pem" 2>/dev/null
  rm -f "$dir/$host.csr" "$dir/$host.ext"
  echo "created $dir/$host.pem"
done
