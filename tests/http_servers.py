"""Linux HTTP servers from apt as the nperf client's peers: nginx, Apache, lighttpd, h2o, caddy.

Each serves `/index.html` (BODY) on 10.77.0.1:80 inside a test namespace,
from a config written into the test's scratch directory, and logs every
request it answered, one line each, to `access.log` there: a test compares
that count with the client's `responses_ok`. `max_requests` is the server's
keep-alive limit (requests per connection) where it has one.

`client_against` starts the server first (the namespace allows binding an
address it does not have yet), then the TAP example client, then gives the
kernel side of the TAP port its address. With `version=6` both sides use
IPv6 (fd00:77::1 for the server, nginx only).
"""
import json
import os
import sys
import time
from dataclasses import dataclass

from tests import misbehaving_server
from tests.netns import Netns
from tests.procs import REPO
from tests.server_setup import ADDRESSES, kernel_side_up

EXAMPLE = os.path.join(REPO, "examples", "tap", "c.json")
KERNEL_IP = ADDRESSES[4][0]
CLIENT_IP6 = ("fd00:77::10", "fd00:77::11")


def listen_host(version: int) -> str:
    """The kernel side's address as a server's listen line (and `ss`) writes it."""
    return ADDRESSES[version][0] if version == 4 else f"[{ADDRESSES[version][0]}]"
BODY = b"n" * 99 + b"\n"


@dataclass
class Server:
    name: str
    max_requests: int | None      # requests per kept-alive connection, None: no limit


# nginx over TLS (`https`): the certificate `nperf cert` wrote into the run directory, both versions,
# resumption by session ID (its cache) and by ticket; each logged line says the protocol and whether
# the session was resumed ("r") or not (".")
NGINX_TLS = """listen {host}:443 ssl; ssl_certificate {run}/server.crt; ssl_certificate_key {run}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:nperf:1m; ssl_session_tickets on;"""


def _nginx(run, root, limit, host=KERNEL_IP, https=False):
    listen = NGINX_TLS.format(host=host, run=run) if https else f"listen {host}:80;"
    return ["nginx", "-c", _write(run, "nginx.conf", f"""
daemon off; worker_processes 1; pid {run}/nginx.pid; error_log {run}/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format tls '$remote_addr $ssl_protocol $ssl_session_reused $status';
    access_log {run}/access.log{" tls" if https else ""}; keepalive_requests {limit or 100000};
    client_body_temp_path {run}; proxy_temp_path {run}; fastcgi_temp_path {run}; uwsgi_temp_path {run}; scgi_temp_path {run};
    server {{ {listen} root {root}; location = /nc {{ return 204; }}
             # the body of index.html, chunked: a (never matching) sub_filter drops the Content-Length
             location = /chunked {{ alias {root}/index.html; sub_filter_types *; sub_filter 'never' 'never'; }} }}
}}
""")]


def _apache(run, root, limit):
    mods = "/usr/lib/apache2/modules"
    return ["apache2", "-DFOREGROUND", "-f", _write(run, "apache2.conf", f"""
ServerRoot {run}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule mime_module {mods}/mod_mime.so
ServerName localhost
Listen {KERNEL_IP}:80
PidFile {run}/apache2.pid
ErrorLog {run}/error.log
User nobody
Group nogroup
TypesConfig /etc/mime.types
DocumentRoot {root}
<Directory {root}>
    Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests {limit or 0}
KeepAliveTimeout 5
LogFormat "%h \\"%r\\" %>s %B" short
CustomLog {run}/access.log short
""")]


def _lighttpd(run, root, limit):
    return ["lighttpd", "-D", "-f", _write(run, "lighttpd.conf", f"""
server.document-root = "{root}"
server.bind = "{KERNEL_IP}"
server.port = 80
server.modules = ("mod_accesslog")
accesslog.filename = "{run}/access.log"
server.errorlog = "{run}/error.log"
server.max-keep-alive-requests = {limit or 100000}
mimetype.assign = (".html" => "text/html")
""")]


def _h2o(run, root, limit):
    return ["h2o", "-c", _write(run, "h2o.conf", f"""
listen:
  host: {KERNEL_IP}
  port: 80
user: nobody
error-log: {run}/error.log
access-log: {run}/access.log
hosts:
  default:
    paths:
      /:
        file.dir: {root}
""")]


def _caddy(run, root, limit):
    return ["caddy", "run", "--adapter", "caddyfile", "--config", _write(run, "Caddyfile", f"""
{{
    admin off
    auto_https off
    storage file_system {run}/caddy
}}
http://{KERNEL_IP}:80 {{
    bind {KERNEL_IP}
    log {{
        output file {run}/access.log
    }}
    respond /nc 204
    root * {root}
    file_server
}}
""")]


def _write(run, name, text):
    path = os.path.join(run, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _misbehaving(mode):
    script = os.path.join(REPO, "tests", "misbehaving_server.py")
    return lambda run, root, limit: [sys.executable, script, mode, KERNEL_IP]


SERVERS = {"nginx": (Server("nginx", 100), _nginx), "apache": (Server("apache", 100), _apache),
           "lighttpd": (Server("lighttpd", 100), _lighttpd), "h2o": (Server("h2o", None), _h2o),
           "caddy": (Server("caddy", None), _caddy)}
PEERS = {f"peer-{mode}": (Server(f"peer-{mode}", None), _misbehaving(mode)) for mode in misbehaving_server.MODES}


def served_requests(s) -> int:
    """Requests the server logged (one access-log line each); read after it has stopped."""
    path = s.path("access.log")
    return sum(1 for line in open(path) if line.strip()) if os.path.exists(path) else 0


def start_server(s, ns: Netns, name: str, limit: int | None, version: int = 4, https: bool = False):
    """Server `name` in namespace ns, listening on the kernel side's address, port 80 (with `limit`
    requests per connection); over IPv6 (`version=6`) or HTTPS (port 443) nginx only."""
    root = s.path("www")
    os.makedirs(root, exist_ok=True)
    os.chmod(s.dir, 0o755)                  # servers that drop to nobody read the files
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(BODY)
    ns.run("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1")
    env = dict(os.environ, HOME=s.dir, XDG_DATA_HOME=s.dir, XDG_CONFIG_HOME=s.dir)
    host = listen_host(version)
    build = {**SERVERS, **PEERS}[name][1]
    argv = build(s.dir, root, limit) if version == 4 and not https else _nginx(s.dir, root, limit, host, https)
    proc = s.start(ns.argv(*argv), name, env=env)
    port = 443 if https else 80
    for _ in range(200):
        if f"{host}:{port}" in ns.run("ss", "-Hltn").stdout:
            return proc
        assert proc.p.poll() is None, proc.text()
        time.sleep(0.05)
    raise AssertionError(f"{name} did not listen on {host}:{port}: {proc.text()}")


def client_against(s, ns: Netns, tag: str, server: str | None = "nginx", limit: int | None = None,
                   args: tuple[str, ...] = (), status: int = 0, version: int = 4, https: bool = False, **changes):
    """The TAP example client (its file with `changes` by top-level key, its command line with `args`)
    against `server` in ns (None: nothing listens; "peer-MODE": tests/misbehaving_server.py);
    returns (the server process, still running, or None; the client process, exited with `status`;
    the client's report). With `https`, nginx serves TLS on port 443 (its certificate in s.dir)."""
    assert (version == 4 and not https) or server == "nginx"
    srv = start_server(s, ns, server, limit, version, https) if server else None
    cfg = json.load(open(EXAMPLE))
    cfg["dpdk"]["args"] += f" --file-prefix={s.prefix(tag)}"
    if version == 6:
        cfg["network"]["l3"].update(src_ip_start=CLIENT_IP6[0], src_ip_end=CLIENT_IP6[1],
                                    dst_ip_start=ADDRESSES[6][0], dst_ip_end=ADDRESSES[6][0])
    cfg.update(changes)
    path = s.write_json(f"c_{tag}.json", cfg)
    client = s.start(ns.argv(sys.executable, "-m", "nperf", "client", path, "--report", s.path(f"{tag}.out"),
                             *args), "client")
    client.wait_for(r"\] ready", 300)
    kernel_side_up(ns, "nptap0", version)
    assert client.p.wait(120) == status, client.text()
    return srv, client, json.load(open(s.path(f"{tag}.out")))
