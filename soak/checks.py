"""What the soak concludes from what it recorded: per client, per message, per fault.

Definitions (the module docstring of ``soak`` says why these are the right ones):

- The truth is the channel's rows in ``messages``, read from the database at the end.
- A client's *sequence* is every message frame it received, in arrival order, over all its
  connections one after the other (each opened with ``after=`` the highest id before it), the
  final catch-up included. In order means: the sequence is strictly increasing. A frame whose
  id the client already had is a *duplicate*; a frame with a new id lower than one received
  before it is *out of order*.
- *Lost*: an acknowledged message missing from a client's sequence. *Missing*: any committed
  message missing from a client (an unacknowledged message that was committed anyway must
  reach everyone too). *Unknown*: an id a client received that the table does not have.
- *Recovery* after a fault that began at T0 and ended (the database or instance back) at T1:
  the first moment by which every client that lost its socket in the fault's window has a live
  connection again (``ready`` received) and a message sent at or after T1 has reached every
  client; minus T0.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .clients import TOKEN, HttpLog, HttpRecord, SentMessage, SoakSocket
from .servers import LogScan

__all__ = ["ClientResult", "Fault", "SoakResult", "check_client", "recovery_time", "timeline"]


@dataclass
class Fault:
    kind: str
    started: float
    done: float | None = None
    detail: str = ""
    down: tuple[float, float] | None = None  # the database deliberately down, from..to
    recovery: float | None = None
    disconnected: int = 0
    error: str = ""


@dataclass
class ClientResult:
    name: str
    user: str
    connections: int
    received: int
    distinct: int
    duplicates: int
    out_of_order: int
    lost: list[int]
    missing: list[int]
    unknown: list[int]
    content_mismatches: int
    not_increasing_connections: int

    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.out_of_order
            or self.lost
            or self.missing
            or self.unknown
            or self.content_mismatches
            or self.not_increasing_connections
        )


def timeline(sock: SoakSocket, t0: float) -> list[dict[str, Any]]:
    """A client's connections, times in seconds from ``t0`` (for report.json)."""

    def at(moment: float | None) -> float | None:
        return None if moment is None else round(moment - t0, 3)

    return [
        {
            "after": c.after,
            "opened": at(c.opened),
            "ready": at(c.ready),
            "closed": at(c.closed),
            "code": c.close_code,
            "messages": len(c.ids),
            "ids": [c.ids[0], c.ids[-1]] if c.ids else [],
            "final": c.final,
            "by_client": c.by_client,
        }
        for c in sock.connections
    ]


def check_client(
    sock: SoakSocket, truth: dict[int, str], acked_ids: set[int], t0: float = 0.0
) -> ClientResult:
    seen: set[int] = set()
    highest = 0
    received = duplicates = out_of_order = 0
    not_increasing = 0
    for connection in sock.connections:
        previous = connection.after
        increasing = True
        for message_id in connection.ids:
            received += 1
            if message_id <= previous:
                increasing = False
            previous = message_id
            if message_id in seen:
                duplicates += 1
            elif message_id < highest:
                out_of_order += 1
            seen.add(message_id)
            highest = max(highest, message_id)
        if not increasing:
            not_increasing += 1
    mismatches = sock.content_mismatches + sum(
        1
        for message_id, content in sock.contents.items()
        if message_id in truth and truth[message_id] != content
    )
    return ClientResult(
        name=sock.name,
        user=sock.user.name,
        connections=len(sock.connections),
        received=received,
        distinct=len(seen),
        duplicates=duplicates,
        out_of_order=out_of_order,
        lost=sorted(acked_ids - seen),
        missing=sorted(set(truth) - seen),
        unknown=sorted(seen - set(truth)),
        content_mismatches=mismatches,
        not_increasing_connections=not_increasing,
        timeline=timeline(sock, t0),
    )


def first_arrivals(sock: SoakSocket) -> dict[int, float]:
    arrivals: dict[int, float] = {}
    for connection in sock.connections:
        for message_id, arrived in zip(connection.ids, connection.times, strict=True):
            arrivals.setdefault(message_id, arrived)
    return arrivals


def recovery_time(
    fault: Fault,
    window_end: float,
    sockets: list[SoakSocket],
    arrivals: dict[str, dict[int, float]],
    sent_after: list[tuple[float, int]],
) -> tuple[float | None, int]:
    """(seconds from the fault's start to recovery, or None; clients that lost their socket)."""
    start = fault.started
    back = start
    disconnected = 0
    for sock in sockets:
        closes = [
            c.closed
            for c in sock.connections
            if c.closed is not None and not c.by_client and start <= c.closed < window_end
        ]
        if not closes:
            continue
        disconnected += 1
        last = max(closes)
        ready = next(
            (c.ready for c in sock.connections if c.ready is not None and c.opened >= last),
            None,
        )
        if ready is None:
            return None, disconnected
        back = max(back, ready)
    end = fault.done if fault.done is not None else start
    best: float | None = None
    for sent, message_id in sent_after:
        if sent < end:
            continue
        if best is not None and sent >= best:
            break  # later messages cannot reach everyone sooner than they were sent
        times = [arrivals[sock.name].get(message_id) for sock in sockets]
        if any(t is None for t in times):
            continue
        reach = max(t for t in times if t is not None)
        best = reach if best is None else min(best, reach)
    if best is None:
        return None, disconnected
    return max(back, best) - start, disconnected


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class SoakResult:
    """Everything a run found, and its report."""

    config: dict[str, Any]
    clients: list[ClientResult]
    messages: list[SentMessage]
    truth: dict[int, str]
    faults: list[Fault]
    http: HttpLog
    logs: LogScan
    skipped_ticks: int = 0
    send_failed: int = 0
    server_duplicates: list[str] = field(default_factory=list)  # tokens committed twice
    ack_mismatches: int = 0
    foreign_messages: int = 0
    stalled_clients: list[str] = field(default_factory=list)
    not_live_at_end: list[str] = field(default_factory=list)
    close_codes: Counter[str] = field(default_factory=Counter)
    error_frames: Counter[str] = field(default_factory=Counter)
    fuzz_error_frames: Counter[str] = field(default_factory=Counter)
    fuzz_close_codes: Counter[str] = field(default_factory=Counter)
    fuzz_sent: Counter[str] = field(default_factory=Counter)
    fuzz_no_answer: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    expected_5xx: list[HttpRecord] = field(default_factory=list)
    unexpected_5xx: list[HttpRecord] = field(default_factory=list)
    setup_seconds: float = 0.0
    total_seconds: float = 0.0
    logs_dir: str = ""
    t0: float = 0.0

    # --- the figures --------------------------------------------------------------------

    @property
    def sent(self) -> int:
        return len(self.messages)

    @property
    def acked(self) -> list[SentMessage]:
        return [m for m in self.messages if m.acked]

    @property
    def unacked(self) -> list[SentMessage]:
        return [m for m in self.messages if not m.acked]

    def committed_tokens(self) -> Counter[str]:
        tokens: Counter[str] = Counter()
        for content in self.truth.values():
            found = TOKEN.search(content)
            if found:
                tokens[found.group(0)] += 1
        return tokens

    @property
    def unacked_turned_up(self) -> list[SentMessage]:
        committed = self.committed_tokens()
        return [m for m in self.unacked if committed[m.token]]

    @property
    def lost_messages(self) -> set[int]:
        return {i for c in self.clients for i in c.lost}

    @property
    def lost_deliveries(self) -> int:
        return sum(len(c.lost) for c in self.clients)

    @property
    def missing_deliveries(self) -> int:
        return sum(len(c.missing) for c in self.clients)

    @property
    def duplicated(self) -> int:
        return sum(c.duplicates for c in self.clients) + len(self.server_duplicates)

    @property
    def out_of_order(self) -> int:
        return sum(c.out_of_order for c in self.clients)

    @property
    def unknown(self) -> int:
        return sum(len(c.unknown) for c in self.clients)

    @property
    def internal_errors(self) -> int:
        return self.error_frames["internal"] + self.fuzz_error_frames["internal"]

    @property
    def closes_1011(self) -> int:
        return self.close_codes["1011"] + self.fuzz_close_codes["1011"]

    def failures(self) -> list[str]:
        """What makes the run fail; empty when it passes."""
        checks = {
            "lost (acknowledged messages missing at a client)": self.lost_deliveries,
            "duplicated": self.duplicated,
            "out of order": self.out_of_order,
            "5xx (other than 503 while the database was deliberately down)": len(
                self.unexpected_5xx
            ),
            "missing (committed messages missing at a client)": self.missing_deliveries,
            "unknown ids (received, not in the table)": self.unknown,
            "content differing from the table": sum(c.content_mismatches for c in self.clients),
            "acks whose id is not the token's row": self.ack_mismatches,
            "internal error frames": self.internal_errors,
            "sockets closed with 1011": self.closes_1011,
            "ERROR log records with a traceback": len(self.logs.error_tracebacks),
            "clients not live again at the end": len(self.not_live_at_end),
            "faults whose action failed": sum(1 for f in self.faults if f.error),
            "faults not recovered from": sum(1 for f in self.faults if f.recovery is None),
        }
        return [f"{name}: {count}" for name, count in checks.items() if count]

    @property
    def passed(self) -> bool:
        return not self.failures()

    # --- the report ---------------------------------------------------------------------

    def report(self) -> str:
        cfg = self.config
        out: list[str] = []
        add = out.append
        add(
            f"soak: {cfg['duration']:.0f} s of posting at {cfg['rate']:g} msg/s, "
            f"{len(self.clients)} clients ({cfg['users']} users; {cfg['on_a']} sockets on A, "
            f"2 workers; {cfg['on_b']} on B, 1 worker), {cfg['fuzz_sockets']} fuzzing sockets"
        )
        add(
            f"  setup {self.setup_seconds:.1f} s, whole run {self.total_seconds:.1f} s; "
            f"logs in {self.logs_dir or '(removed)'}"
        )
        add("")
        unacked = Counter(m.outcome for m in self.unacked)
        turned_up = self.unacked_turned_up
        never = len(self.unacked) - len(turned_up)
        latencies = [m.answered - m.sent for m in self.acked if m.answered is not None]
        add("messages")
        add(
            f"  sent {self.sent}, acknowledged {len(self.acked)}, not acknowledged "
            f"{len(self.unacked)} {dict(sorted(unacked.items())) if unacked else ''}".rstrip()
        )
        add(
            f"  not acknowledged but committed (turned up later): {len(turned_up)}; "
            f"never committed: {never}"
        )
        add(
            f"  not sent (socket closed while writing): {self.send_failed}; ticks with no idle "
            f"live socket: {self.skipped_ticks}"
        )
        if latencies:
            add(
                f"  time to acknowledgement: median {statistics.median(latencies) * 1000:.0f} ms,"
                f" p99 {_percentile(latencies, 0.99) * 1000:.0f} ms, max "
                f"{max(latencies) * 1000:.0f} ms"
            )
        ids = sorted(self.truth)
        span = f" (ids {ids[0]}..{ids[-1]})" if ids else ""
        add(f"  committed in the channel: {len(self.truth)}{span}")
        add("")
        add("delivery per client (sequence = every message frame, all connections in order)")
        add(
            f"  {'client':<8} {'user':<14} {'conns':>5} {'delivered':>9} {'distinct':>8} "
            f"{'lost':>5} {'missing':>7} {'dup':>4} {'order':>5} {'unknown':>7}"
        )
        for c in self.clients:
            add(
                f"  {c.name:<8} {c.user:<14} {c.connections:>5} {c.received:>9} {c.distinct:>8} "
                f"{len(c.lost):>5} {len(c.missing):>7} {c.duplicates:>4} {c.out_of_order:>5} "
                f"{len(c.unknown):>7}"
            )
        add(
            f"  lost {self.lost_deliveries} deliveries ({len(self.lost_messages)} messages), "
            f"missing {self.missing_deliveries}, duplicated {self.duplicated}, out of order "
            f"{self.out_of_order}, unknown {self.unknown}"
        )
        if self.server_duplicates:
            add(f"  tokens committed twice: {self.server_duplicates[:10]}")
        if self.stalled_clients:
            add(
                "  live sockets that had not received the last committed message 20 s after "
                f"posting stopped (fixed by the final catch-up): {self.stalled_clients}"
            )
        add("")
        add("websockets")
        add(f"  checked clients' close codes: {dict(sorted(self.close_codes.items()))}")
        add(f"  checked clients' error frames: {dict(sorted(self.error_frames.items()))}")
        add(f"  handshakes refused or failed: {dict(sorted(self.refusals.items()))}")
        add(f"  fuzzing sockets' error frames: {dict(sorted(self.fuzz_error_frames.items()))}")
        add(f"  fuzzing sockets' close codes: {dict(sorted(self.fuzz_close_codes.items()))}")
        add("")
        add("HTTP (every answer anyone got, clients and fuzzers)")
        add(f"  {self.http.count} exchanges; statuses {dict(sorted(self.http.statuses.items()))}")
        if self.http.failures:
            add(f"  no HTTP answer: {dict(sorted(self.http.failures.items()))}")
        add(
            f"  5xx: {len(self.unexpected_5xx)} unexpected; {len(self.expected_5xx)} x 503 asked "
            "while PostgreSQL was deliberately down (the documented answer, not counted)"
        )
        for record in self.unexpected_5xx[:20]:
            add(
                f"    t={record.started - self.t0:7.2f} {record.status} {record.method} "
                f"{record.path[:80]} ({record.source})"
            )
        fuzz_total = sum(self.fuzz_sent.values())
        add(f"  fuzz cases sent: {fuzz_total} ({len(self.fuzz_sent)} kinds)")
        if self.fuzz_no_answer:
            add(
                f"  raw fuzz cases the server closed without an answer: {dict(self.fuzz_no_answer)}"
            )
        add("")
        add("faults (recovery: every client live again and a message sent after it everywhere)")
        for fault in self.faults:
            took = f"{fault.done - fault.started:5.2f} s" if fault.done is not None else "  -   "
            if fault.error:
                outcome = f"ACTION FAILED: {fault.error}"
            elif fault.recovery is None:
                outcome = "NOT RECOVERED"
            else:
                outcome = f"recovered in {fault.recovery:5.2f} s"
            add(
                f"  t={fault.started - self.t0:6.1f}  {fault.kind:<19} action {took}  {outcome}; "
                f"{fault.disconnected:>2} clients reconnected  ({fault.detail})"
            )
        add("")
        add("server logs")
        add(f"  records by level: {dict(sorted(self.logs.levels.items()))}")
        add(f"  ERROR with a traceback (our bugs): {len(self.logs.error_tracebacks)}")
        for finding in self.logs.error_tracebacks[:10]:
            add(f"    {finding.describe()}")
        add(
            f"  ERROR without a traceback: {self.logs.worker_kills} gunicorn notices of our "
            f"kill -9; {len(self.logs.errors_without_traceback)} other"
        )
        for finding in self.logs.errors_without_traceback[:6]:
            add(f"    {finding.describe()}")
        add(f"  tracebacks at other levels: {len(self.logs.other_tracebacks)}")
        for finding in self.logs.other_tracebacks[:6]:
            add(f"    {finding.describe()}")
        add("")
        failures = self.failures()
        if failures:
            add("RESULT: FAIL: " + "; ".join(failures))
        else:
            add(
                "RESULT: PASS (lost 0, duplicated 0, out of order 0, unexpected 5xx 0, "
                "ERROR tracebacks 0)"
            )
        return "\n".join(out)

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-able data (report.json)."""
        return {
            "config": self.config,
            "passed": self.passed,
            "failures": self.failures(),
            "sent": self.sent,
            "acknowledged": len(self.acked),
            "not_acknowledged": len(self.unacked),
            "not_acknowledged_turned_up": len(self.unacked_turned_up),
            "committed": len(self.truth),
            "lost_deliveries": self.lost_deliveries,
            "missing_deliveries": self.missing_deliveries,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "unexpected_5xx": len(self.unexpected_5xx),
            "expected_503": len(self.expected_5xx),
            "error_tracebacks": len(self.logs.error_tracebacks),
            "clients": [
                {
                    "name": c.name,
                    "user": c.user,
                    "connections": c.connections,
                    "delivered": c.received,
                    "distinct": c.distinct,
                    "lost": c.lost,
                    "missing": c.missing,
                    "duplicates": c.duplicates,
                    "out_of_order": c.out_of_order,
                    "timeline": c.timeline,
                }
                for c in self.clients
            ],
            "faults": [
                {
                    "kind": f.kind,
                    "at": round(f.started - self.t0, 2),
                    "action_seconds": None if f.done is None else round(f.done - f.started, 2),
                    "recovery_seconds": None if f.recovery is None else round(f.recovery, 2),
                    "clients_reconnected": f.disconnected,
                    "detail": f.detail,
                    "error": f.error,
                }
                for f in self.faults
            ],
            "http_statuses": {str(k): v for k, v in sorted(self.http.statuses.items())},
        }
