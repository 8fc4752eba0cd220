"""nginx in front of app instances, for tests/functional/test_nginx.py: the deployment of deploy/ on
loopback (its app instances are ``harness.instance.Instance``: each keeps its port across
restarts, so that nginx's upstream stays right when it is stopped, or killed, and started again).

- ``NginxServer`` runs Debian's nginx as a child process (``daemon off``) with a configuration
  of its own in a temporary directory: deploy/nginx-site.conf.template rendered by
  ``deploy.render`` (the file an operator installs), wrapped in an ``nginx.conf`` that puts the
  pid file, the logs and the temporary files in that directory too.
- ``ProxiedClient`` is ``ChatClient`` talking https to nginx only: a made-up host name resolved
  to 127.0.0.1 by the client itself, the test's self-signed certificate trusted, and every
  connection made from a loopback address of its own, so that the app's throttles can be seen
  to key on the real client and not on nginx (which connects from 127.0.0.1).
"""

from __future__ import annotations

import grp
import os
import pwd
import random
import shutil
import socket
import ssl
import subprocess
import unittest
from pathlib import Path
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver

from deploy.render import SiteSettings, render_site
from harness.chatclient import ChatClient, ChatSocket, random_name
from harness.net import free_port
from harness.paths import HOST
from harness.process import ServerProcess

__all__ = [
    "SITE_NAME",
    "NginxServer",
    "ProxiedClient",
    "client_address",
    "make_certificate",
    "require_nginx",
    "tls_context",
]

# The site's name: not in any DNS; clients resolve it to HOST themselves.
SITE_NAME = "chat.aiotutorial.test"
_NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
_MIME_TYPES = ("/etc/nginx/mime.types", "/usr/local/etc/nginx/mime.types")


def require_nginx() -> str:
    """nginx's path; a skip without it, or an error when ``CI`` is set."""
    for candidate in (shutil.which("nginx"), *_NGINX_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = (
        "nginx is not installed (looked for `nginx` on PATH and in /usr/sbin); "
        "scripts/ensure-nginx installs Debian's package (as root, or with sudo)"
    )
    if os.environ.get("CI"):
        raise RuntimeError(f"{message}. CI is set, so this is a failure, not a skip.")
    raise unittest.SkipTest(message)


def make_certificate(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate for ``names`` (and 127.0.0.1) and its key, by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        message = "openssl is not installed (Debian's openssl package)"
        if os.environ.get("CI"):
            raise RuntimeError(message)
        raise unittest.SkipTest(message)
    cert, key = directory / "site.pem", directory / "site.key"
    alt_names = ",".join([*(f"DNS:{name}" for name in names), "IP:127.0.0.1"])
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "2", "-subj", f"/CN={names[0]}"]
        + ["-addext", f"subjectAltName={alt_names}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def client_address() -> str:
    """A loopback address no other run used (the throttles' buckets outlive a run), never
    127.0.0.1 (nginx's own, which the app trusts)."""
    return f"127.{random.randint(2, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


class NginxServer(ServerProcess):
    """nginx on two free loopback ports (http, https) before ``upstreams``, as a child process.

    ``port`` is the https port; ``http_port`` the plain one (which only redirects). Everything
    it writes is under ``directory``: ``access.log``, ``error.log``, ``nginx.pid``, the
    rendered ``site.conf`` and the ``nginx.conf`` that includes it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        upstreams: list[str],
        certificate: Path,
        key: Path,
        server_names: list[str],
    ) -> None:
        super().__init__(log_path=directory / "nginx.out", name="nginx", start_timeout=15.0)
        self.binary = require_nginx()
        self.directory = directory
        self.upstreams = upstreams
        self.certificate = certificate
        self.key = key
        self.server_names = server_names
        self.http_port = free_port()
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        self.pid_file = directory / "nginx.pid"

    def site(self) -> SiteSettings:
        return SiteSettings(
            server_names=self.server_names,
            upstreams=self.upstreams,
            tls_certificate=str(self.certificate),
            tls_certificate_key=str(self.key),
            http_listen=[f"{HOST}:{self.http_port}"],
            https_listen=[f"{HOST}:{self.port}"],
            access_log=str(self.access_log),
            # A stopped instance is tried again soon: the tests restart them.
            fail_timeout_seconds=1,
        )

    def command(self) -> list[str]:
        # Called again with new ports when one was taken meanwhile (ServerProcess.start).
        if "Address already in use" in self.log_text():
            self.http_port = free_port()
        site = self.directory / "site.conf"
        site.write_text(render_site(self.site()), encoding="utf-8")
        conf = self.directory / "nginx.conf"
        conf.write_text(self._main_conf(site), encoding="utf-8")
        return [self.binary, "-p", str(self.directory), "-c", str(conf), "-e", str(self.error_log)]

    def _main_conf(self, site: Path) -> str:
        d = self.directory
        mime = next((path for path in _MIME_TYPES if Path(path).is_file()), None)
        # As root, nginx's workers would run as nobody, who may not read the checkout or
        # this directory: they run as this user instead (a test, not a deployment).
        user = ""
        if os.geteuid() == 0:
            account = pwd.getpwuid(os.geteuid())
            user = f"user {account.pw_name} {grp.getgrgid(account.pw_gid).gr_name};"
        return f"""\
{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    {f"include {mime};" if mime else ""}
    default_type application/octet-stream;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {site};
}}
"""

    def is_ready(self) -> bool:
        if not self.pid_file.exists():
            return False
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False

    def url(self, path: str = "/") -> str:
        return f"https://{self.server_names[0]}:{self.port}{path}"

    def access_lines(self) -> list[str]:
        try:
            return self.access_log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []


class _LoopbackResolver(AbstractResolver):
    """Every name is HOST: the site's name needs no DNS (nor /etc/hosts)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        return [
            {
                "hostname": host,
                "host": HOST,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


class ProxiedClient(ChatClient):
    """A ``ChatClient`` whose every connection goes to nginx over https from ``address``."""

    def __init__(
        self,
        base_url: str,
        tls: ssl.SSLContext,
        username: str | None = None,
        *,
        address: str | None = None,
    ) -> None:
        self.address = address or client_address()
        self.tls = tls
        # ChatClient's own session is replaced by one that connects as described.
        self.base_url = base_url.rstrip("/")
        self.username = username or random_name("u")
        self.csrf = ""
        # As a browser does: over https, Pyramid's CSRF check wants the Origin (or Referer)
        # of every unsafe request to be the site itself.
        self.origin = str(yarl.URL(self.base_url).origin())
        self.session = aiohttp.ClientSession(
            connector=self._connector(),
            cookie_jar=aiohttp.CookieJar(),
            timeout=aiohttp.ClientTimeout(total=30),
            headers={"Origin": self.origin},
        )
        self.sockets: list[ChatSocket] = []

    def _connector(self, *, force_close: bool = False) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(
            resolver=_LoopbackResolver(),
            local_addr=(self.address, 0),
            ssl=self.tls,
            force_close=force_close,
        )

    def ws_url(self, path: str) -> str:
        return self.url(path)  # https: aiohttp upgrades it over TLS

    def socket_session(self, recv_buffer: int | None) -> aiohttp.ClientSession:
        """``ChatClient``'s session for one socket, over this client's connections."""
        if recv_buffer is not None:
            raise ValueError("recv_buffer is not supported through nginx")
        return aiohttp.ClientSession(
            connector=self._connector(force_close=True),
            cookie_jar=self.session.cookie_jar,
            headers={"Origin": self.origin},
        )


def tls_context(certificate: Path) -> ssl.SSLContext:
    """A client context that trusts the test's certificate (and checks the host name)."""
    return ssl.create_default_context(cafile=str(certificate))
