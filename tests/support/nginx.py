"""A real nginx in front of a test server, configured as README.md's "nginx in front" block.

nginx listens on 127.0.0.1 only, with every file (config, cache, logs, pid) in a temp folder.
`LOCATION` is the README block's `location / { ... }` with the origin's port filled in
(tests/e2e/test_trust_boundary.py checks the two agree); `start_nginx(..., forward_client=False)`
runs the same block without its `X-Forwarded-For` line, the mistake a deployment can make.
Clients may connect from any loopback address (`Nginx.client(source="127.0.0.7")`), which
nginx then reports as `$remote_addr`: distinct real clients on one machine.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.processes import HttpProcess

NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
FORWARD_CLIENT = "proxy_set_header X-Forwarded-For $remote_addr;"

# The README's `location / { ... }`, as written there but for the origin's port.
LOCATION = """\
        location / {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;   # the client, for rate limits and logs
            proxy_set_header Accept $origin_accept;
            proxy_set_header Sec-CH-DPR $hint_dpr;
            proxy_set_header DPR "";
            proxy_set_header Sec-CH-Width $hint_width;
            proxy_set_header Width "";
            client_max_body_size 25m;      # limits.max_upload_bytes; nginx's default is 1m

            proxy_cache images;
            proxy_cache_key "$scheme$host$request_uri|$cache_accept|$hint_dpr|$hint_width";
            proxy_ignore_headers Vary;     # the key holds everything the origin varies on
            proxy_cache_lock on;           # one origin request per missing entry
            proxy_cache_revalidate on;     # refresh with If-None-Match / If-Modified-Since
            # No proxy_cache_valid: lifetimes come from the origin's Cache-Control.
            add_header X-Cache-Status $upstream_cache_status always;
        }}
"""

# The README's block around it, with the paths and the loopback port filled in.
CONFIG = """
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;

    proxy_cache_path {folder}/cache levels=1:2 keys_zone=images:10m max_size=1g inactive=30d use_temp_path=off;

    # Accept reduced to what the origin tells apart, for the cache key ...
    map $http_accept $cache_accept {{
        default       other;
        ~*image/avif  avif;
        ~*image/webp  webp;
    }}
    # ... and sent to the origin in that form, so its answer always matches the key.
    map $cache_accept $origin_accept {{
        avif     "image/avif,image/webp,*/*";
        webp     "image/webp,*/*";
        default  "*/*";
    }}
    # Client hints (only URLs with dpr=auto / w=auto use them): the Sec-CH- name, else the legacy one.
    map $http_sec_ch_dpr $hint_dpr {{
        ""       $http_dpr;
        default  $http_sec_ch_dpr;
    }}
    map $http_sec_ch_width $hint_width {{
        ""       $http_width;
        default  $http_sec_ch_width;
    }}

    server {{
        listen 127.0.0.1:{port};
{location}    }}
}}
"""


@dataclass
class Nginx:
    folder: Path
    process: HttpProcess

    @property
    def url(self) -> str:
        return self.process.url

    def client(self, source: str | None = None, **kwargs: object) -> httpx.Client:
        """A client of nginx, connecting from loopback address `source` when given."""
        transport = httpx.HTTPTransport(local_address=source) if source else None
        return httpx.Client(base_url=self.url, timeout=30, transport=transport, **kwargs)  # type: ignore[arg-type]

    def entries(self) -> int:
        """Cache files on disk (each is one key)."""
        return sum(1 for p in (self.folder / "cache").rglob("*") if p.is_file())

    def stop(self) -> None:
        self.process.stop()


def start_nginx(folder: Path, origin_port: int, forward_client: bool = True) -> Nginx:
    """nginx in the foreground on a free port; ready once it accepts a connection (any request would be cached)."""
    for sub in ("cache", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    assert NGINX is not None
    nginx = NGINX
    user = "user root root;" if os.geteuid() == 0 else ""  # workers must reach the temp folder
    location = LOCATION.format(origin=origin_port)
    if not forward_client:
        location = "\n".join(line for line in location.split("\n") if FORWARD_CLIENT not in line)

    def command(port: int) -> list[str]:
        """The config is written for the port nginx is started on (a first start may pick another)."""
        config.write_text(CONFIG.format(folder=folder, user=user, port=port, location=location), encoding="utf-8")
        return [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]

    process = HttpProcess("nginx", command, folder / "error.log", ready_path=None, stop_grace_s=10)
    return Nginx(folder, process.start(timeout=10))
