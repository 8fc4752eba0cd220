"""Fill in deploy/nginx-site.conf.template: ``python -m deploy.render --server-name NAME
--upstream HOST:PORT [--upstream ...] > /etc/nginx/sites-available/aiotutorial``.

The template's ``{{ name }}`` places are filled from ``SiteSettings``; nginx's own ``$variables``
are left alone. tests/functional/test_nginx.py renders the same template with loopback ports and a
self-signed certificate, so what is tested is what is deployed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TEMPLATE", "SiteSettings", "render_site", "main"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx-site.conf.template"
STATIC_ROOT = ROOT / "aiotutorial" / "static"
HSTS = "max-age=31536000; includeSubDomains"
_PLACE = re.compile(r"\{\{ *([a-z_]+) *\}\}")
_INDENT = "    "


@dataclass
class SiteSettings:
    """What differs between deployments (and between production and the test)."""

    server_names: list[str]
    upstreams: list[str]  # host:port of each gunicorn instance
    tls_certificate: str = "/etc/ssl/certs/aiotutorial.pem"
    tls_certificate_key: str = "/etc/ssl/private/aiotutorial.key"
    http_listen: list[str] = field(default_factory=lambda: ["80", "[::]:80"])
    https_listen: list[str] = field(default_factory=lambda: ["443", "[::]:443"])
    static_root: str = str(STATIC_ROOT)
    access_log: str = "/var/log/nginx/aiotutorial.access.log"
    hsts: str = HSTS
    # How long nginx leaves an instance alone after a connection to it failed.
    fail_timeout_seconds: int = 5
    # Every socket of a channel to the same instance (consistent hashing on the channel's
    # name), so that fewer workers subscribe to each channel on the Redis bus.
    channel_affinity: bool = False

    def values(self) -> dict[str, str]:
        https_port = self.https_listen[0].rsplit(":", 1)[-1]
        servers = "\n".join(
            f"{_INDENT}server {address} max_fails=1 fail_timeout={self.fail_timeout_seconds}s;"
            for address in self.upstreams
        )
        return {
            "server_names": " ".join(self.server_names),
            "upstream_servers": servers,
            "channel_affinity": _CHANNEL_AFFINITY.format(servers=servers)
            if self.channel_affinity
            else "",
            "proxy_target": "$aiotutorial_upstream" if self.channel_affinity else "aiotutorial_app",
            "http_listen": _listen(self.http_listen, ""),
            "https_listen": _listen(self.https_listen, " ssl http2"),
            "http_listen_default": _listen(self.http_listen, " default_server"),
            "https_listen_default": _listen(self.https_listen, " ssl http2 default_server"),
            "https_port_suffix": "" if https_port == "443" else f":{https_port}",
            "tls_certificate": self.tls_certificate,
            "tls_certificate_key": self.tls_certificate_key,
            "static_root": self.static_root.rstrip("/"),
            "access_log": self.access_log,
            "hsts": self.hsts,
        }


# With --channel-affinity: a channel's websockets (/channels/NAME/ws) go to the instance its
# name hashes to, the rest as before. Consistent hashing: an instance added or gone moves only
# the channels on it; a channel whose instance refuses connections goes to the next one.
_CHANNEL_AFFINITY = """
# Channel affinity (deploy/README.md): every socket of a channel on one instance, so that on
# the Redis bus fewer workers subscribe to each channel. Hashing ignores load: a very busy
# channel stays on one instance.
map $uri $aiotutorial_channel {{
    ~^/channels/(?<channel>[^/]+)/ws$ $channel;
    default "";
}}

map $aiotutorial_channel $aiotutorial_upstream {{
    ""      aiotutorial_app;
    default aiotutorial_channels;
}}

upstream aiotutorial_channels {{
    hash $aiotutorial_channel consistent;
{servers}
}}
"""


def _listen(addresses: Sequence[str], options: str) -> str:
    return "\n".join(f"{_INDENT}listen {address}{options};" for address in addresses)


def render_site(settings: SiteSettings, template: str | None = None) -> str:
    """The site file: the template with every ``{{ name }}`` filled (a missing one raises)."""
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    values = settings.values()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"the template asks for {{{{ {name} }}}}, which has no value")
        return values[name]

    return _PLACE.sub(fill, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.render", description="Print the nginx site for aiotutorial."
    )
    parser.add_argument("--server-name", action="append", required=True, dest="server_names")
    parser.add_argument(
        "--upstream", action="append", required=True, dest="upstreams", help="HOST:PORT"
    )
    parser.add_argument("--certificate", default=SiteSettings.tls_certificate)
    parser.add_argument("--certificate-key", default=SiteSettings.tls_certificate_key)
    parser.add_argument("--static-root", default=str(STATIC_ROOT))
    parser.add_argument("--access-log", default=SiteSettings.access_log)
    parser.add_argument("--hsts", default=HSTS)
    parser.add_argument(
        "--channel-affinity",
        action="store_true",
        help="send every websocket of a channel to the same instance (consistent hashing)",
    )
    args = parser.parse_args(argv)
    settings = SiteSettings(
        server_names=args.server_names,
        upstreams=args.upstreams,
        tls_certificate=args.certificate,
        tls_certificate_key=args.certificate_key,
        static_root=args.static_root,
        access_log=args.access_log,
        hsts=args.hsts,
        channel_affinity=args.channel_affinity,
    )
    sys.stdout.write(render_site(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
