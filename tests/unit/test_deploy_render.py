"""deploy/render.py's site file, as text: the balancing the deploy notes promise (least
connections), and channel affinity only when asked for (tests/test_nginx.py runs both)."""

from __future__ import annotations

import re
import unittest
from unittest import mock

from deploy.render import SiteSettings, main, render_site


def _block(text: str, head: str) -> str:
    match = re.search(re.escape(head) + r" \{(.*?)\n\}", text, re.S)
    assert match is not None, f"no {head} block"
    return match.group(1)


class RenderTests(unittest.TestCase):
    settings = SiteSettings(
        server_names=["chat.example"], upstreams=["10.0.0.1:7001", "10.0.0.2:7001"]
    )

    def test_sockets_and_pages_go_to_the_instance_with_the_fewest_connections(self) -> None:
        text = render_site(self.settings)
        upstream = _block(text, "upstream aiotutorial_app")
        self.assertIn("\n    least_conn;", upstream)
        self.assertIn("server 10.0.0.2:7001 max_fails=1 fail_timeout=5s;", upstream)
        self.assertIn("proxy_pass http://aiotutorial_app;", text)
        self.assertNotIn("hash", text)
        self.assertNotIn("{{", text)

    def test_channel_affinity_hashes_a_channels_sockets_and_nothing_else(self) -> None:
        settings = SiteSettings(
            server_names=["chat.example"], upstreams=self.settings.upstreams, channel_affinity=True
        )
        text = render_site(settings)
        channels = _block(text, "upstream aiotutorial_channels")
        self.assertIn("hash $aiotutorial_channel consistent;", channels)
        self.assertIn("server 10.0.0.1:7001 max_fails=1 fail_timeout=5s;", channels)
        self.assertIn("least_conn;", _block(text, "upstream aiotutorial_app"))
        mapping = _block(text, "map $uri $aiotutorial_channel")
        pattern = re.search(r"~(\S+) \$channel;", mapping)
        assert pattern is not None
        # nginx's PCRE named group, in Python's spelling.
        regex = re.compile(pattern.group(1).replace("(?<", "(?P<"))
        self.assertEqual(regex.match("/channels/lobby/ws")["channel"], "lobby")  # type: ignore[index]
        for other in ("/channels/lobby", "/channels/lobby/ws/x", "/channels/a/b/ws", "/ws"):
            self.assertIsNone(regex.match(other), other)
        self.assertIn("proxy_pass http://$aiotutorial_upstream;", text)

    def test_the_command_line_flag(self) -> None:
        with mock.patch("sys.stdout") as stdout:
            main(["--server-name", "a.example", "--upstream", "127.0.0.1:1", "--channel-affinity"])
        written = "".join(call.args[0] for call in stdout.write.call_args_list)
        self.assertIn("upstream aiotutorial_channels", written)
