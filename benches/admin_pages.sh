#!/usr/bin/env bash
# Times the admin pages and /metrics beside /healthz on a running relay (the built binary in
# front of the reference shop, ERPNext unreachable): 300 sequential curl requests each.
# Run from the repository root after `cargo build`: bash benches/admin_pages.sh
set -euo pipefail
work=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf $work' EXIT
bin=${SHOPRELAY_BIN:-target/debug/shoprelay}
$bin shop mock --listen 127.0.0.1:0 >$work/shop.out 2>/dev/null & pids+=($!)
for _ in $(seq 100); do grep -q base_url $work/shop.out && break; sleep 0.1; done
shop_url=$(sed -n 's/.*base_url = "\([^"]*\)".*/\1/p' $work/shop.out)
cat >$work/relay.toml <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$work/data"
admin_token = "bench-admin-token-0123456789"
[erpnext]
url = "http://127.0.0.1:9"
api_key = "k"
api_secret = "s"
webhook_secrets = ["x"]
reconcile_interval_secs = 0
[shop]
base_url = "$shop_url"
token = "shop-token"
[[channels]]
name = "web"
warehouses = ["Stores - B", "Finished - B"]
[[channels]]
name = "b2b"
warehouses = ["Stores - B"]
TOML
$bin serve --config $work/relay.toml >$work/relay.out 2>/dev/null & pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' $work/relay.out && break; sleep 0.1; done
r=$(sed -n 's/.*listening on \(.*\)/\1/p' $work/relay.out)
cookie=$(curl -s -D - -o /dev/null -d token=bench-admin-token-0123456789 http://$r/admin/login | sed -n 's/^set-cookie: \([^;]*\).*/\1/Ip')
measure() { # name url [cookie]
  local f=$work/t; : > $f
  for i in $(seq 300); do curl -s -o /dev/null -w '%{time_total} %{size_download}\n' ${3:+-H "Cookie: $3"} "$2" >> $f; done
  sort -n $f | awk -v n="$1" '{t[NR]=$1; s=$2} END {printf "| %s | %.2f ms | %.2f ms | %d bytes |\n", n, t[int(NR*0.5)]*1000, t[int(NR*0.99)]*1000, s}'
}
echo "| request | p50 | p99 | size |"; echo "|---|---|---|---|"
measure "baseline: GET /healthz" http://$r/healthz
measure "GET /metrics" http://$r/metrics
measure "GET /admin/ui/channels (page)" http://$r/admin/ui/channels "$cookie"
measure "GET /admin/ui/dead-letters (page)" http://$r/admin/ui/dead-letters "$cookie"
measure "GET /admin/ (status page, both probes)" http://$r/admin/ "$cookie"
