#!/usr/bin/env bash
# Media figures (issue 18): a 12-megapixel JPEG processed in-process and through the router to READY, and a
# large download through a signed link beside the same file served by nginx on loopback, with the media
# subgraph's and the router's resident memory. Prints figures; asserts nothing.
#
#   benches/media.sh [SIZE_MB]   (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-100}
export PARLEY_NO_RATE_LIMITS=true
# The download is larger than the default 10 MB a message takes.
export PARLEY_MEDIA_MAX_UPLOAD_MB=$((size_mb + 10))
cargo build --release -p parley -p parley-bench
bin=target/release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if ! command -v nginx >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi

dir=$(mktemp -d)
chmod 755 "$dir"
mkdir -p "$dir/www" "$dir/nginx"
port=$(free_port)
nginx_port=$(free_port)
cat > "$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $dir/nginx;
  proxy_temp_path $dir/nginx;
  fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx;
  scgi_temp_path $dir/nginx;
  server { listen 127.0.0.1:$nginx_port; root $dir/www; }
}
CONF
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --processes --data-dir "$dir/data" \
  --port "$port" >"$dir/out" 2>"$dir/err" &
up=$!
nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" &
ngx=$!
trap 'kill $up $ngx 2>/dev/null; wait $up $ngx 2>/dev/null; rm -rf "$dir"' EXIT
until grep -q GraphiQL "$dir/out" 2>/dev/null; do
  kill -0 "$up" 2>/dev/null || { cat "$dir/err"; exit 1; }
  sleep 0.1
done
router=$(pgrep -f "parley router .*--port $port" | head -1)
media=$(pgrep -f "parley subgraph media" | head -1)
media_port=$(ps -o args= -p "$media" | sed -n 's/.*--port \([0-9]*\).*/\1/p')
echo "parley up (release, --processes) on :$port; nginx on :$nginx_port; $(nproc) cores"

"$bin/mediaload" process
"$bin/mediaload" ready --router "http://127.0.0.1:$port"
"$bin/mediaload" download --router "http://127.0.0.1:$port" --size-mb "$size_mb" \
  --file "$dir/www/big.pdf" --baseline "http://127.0.0.1:$nginx_port/big.pdf" \
  --direct "http://127.0.0.1:$media_port" \
  --pid "media=$media" --pid "router=$router"
