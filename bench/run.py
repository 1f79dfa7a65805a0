"""Benchmark yunhu-stream's Streamer against the floor, the naive design and httpx, in one run.

Usage (from the repository root)::

    .venv/bin/python bench/run.py                      # full suite, ~5 minutes on 2 cores
    .venv/bin/python bench/run.py --quick              # smaller sizes, one repeat, ~1 minute
    .venv/bin/python bench/run.py --quick --scenario setup    # smoke check, a few seconds
    .venv/bin/python bench/run.py --scenario latency --repeat 5 --loop uvloop

It starts ``bench/server.py`` (a raw asyncio HTTP/1.1 receiver that timestamps every read) in its
own process, then runs each (scenario, implementation, repeat) in a fresh client process
(``bench/client.py``), interleaving the implementations so that drift hits all of them alike.
For every run it checks that the server received exactly the bytes that were written (length and
CRC-32).  It prints a markdown table (medians over the repeats, and their ratio to the floor's
median) and writes the raw and summarised figures as
JSON to ``bench/results/``.

Exit status: 0 when every run completed without errors, 1 otherwise; with ``--strict`` also 1
when one of our targets is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMPL_ORDER = ("floor", "ours", "ours_silenced", "naive", "httpx")
DEFAULT_IMPLS = IMPL_ORDER
TARGET_IMPLS = ("ours",)  # the implementation the targets apply to

FULL: dict[str, dict[str, Any]] = {
    "backlog": {"writes": 100_000},
    "pace": {"writes": 100_000},
    "latency": {"writes": 600, "interval": 0.005},
    "many": {"streams": 1000, "writes": 50, "interval": 0.010},
    "setup": {"streams": 1000},
    "stall": {"mib": 64, "write_size": 1024, "stall_ms": 2000},
    "webhook": {"events": 2000, "rate": 400},
}
QUICK: dict[str, dict[str, Any]] = {
    "backlog": {"writes": 20_000},
    "pace": {"writes": 20_000},
    "latency": {"writes": 100, "interval": 0.005},
    "many": {"streams": 200, "writes": 20, "interval": 0.010},
    "setup": {"streams": 200},
    "stall": {"mib": 16, "write_size": 1024, "stall_ms": 500},
    "webhook": {"events": 300, "rate": 200},
}
# Scenarios only some implementations can run (a webhook bot needs a web server).
SCENARIO_IMPLS = {"webhook": ("ours", "ours_silenced", "naive")}
DEFAULT_BUFFER_BYTES = 256 * 1024  # Bot(max_buffer_bytes=...) default: the stall target's bound

REALTIME_PRIORITY = 10  # SCHED_FIFO priority for --realtime-latency (1-99)

Metrics = dict[str, Any]  # floats, and latency samples_ms (a list)


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": version("aiohttp"),
        "httpx": version("httpx"),
        "uvloop": version("uvloop"),
        "yunhu_stream": version("yunhu-stream"),
        "commit": commit,
    }


class CpuWatch:
    """How much CPU *other* processes used while a run was going (the noise on a shared box).

    Busy time of the whole machine from /proc/stat, minus the harness's, its reaped children's
    and the server's own CPU time.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / self.tick
        own = sum(
            getattr(resource.getrusage(who), attr)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for attr in ("ru_utime", "ru_stime")
        )
        try:
            stat = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
            own += (int(stat[11]) + int(stat[12])) / self.tick
        except (OSError, IndexError):
            pass
        return time.monotonic(), busy, own

    def foreign_cpus(self) -> float:
        """CPUs' worth of time used by other processes since the last call."""
        now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self.start, now
        self.start = now
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-9))


def ours_available() -> str | None:
    """None when ``from yunhu_stream import Bot`` works, else why not."""
    proc = subprocess.run(
        [sys.executable, "-c", "from yunhu_stream import Bot"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        return None
    return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "import failed"


# --------------------------------------------------------------------------- server


class Server:
    """``bench/server.py`` in a child process; it exits when we close its stdin."""

    def __init__(self, uvloop: bool) -> None:
        args = [sys.executable, str(HERE / "server.py")] + (["--uvloop"] if uvloop else [])
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench server did not start: {self.errors()}")
        self.port = int(json.loads(line)["port"])

    def base_url(self, tag: str) -> str:
        return f"http://127.0.0.1:{self.port}/bench/{tag}/open-apis/v1"

    def stats(self, tag: str, events: bool) -> list[dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", f"/_bench/stats?tag={tag}&events={int(events)}")
            streams: list[dict[str, Any]] = json.loads(conn.getresponse().read())["streams"]
            conn.request("POST", f"/_bench/reset?tag={tag}")
            conn.getresponse().read()
        finally:
            conn.close()
        return streams

    def set_realtime(self, on: bool) -> None:
        """Switch the server between SCHED_FIFO and the normal policy (needs root)."""
        policy = os.SCHED_FIFO if on else os.SCHED_OTHER
        os.sched_setscheduler(
            self.proc.pid, policy, os.sched_param(REALTIME_PRIORITY if on else 0)
        )

    def errors(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- analysis


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def verify(expected: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[str]:
    """Every expected stream reached the server whole: right length, right CRC-32."""
    by_id = {r["recv_id"]: r for r in records}
    problems = []
    for exp in expected:
        rec = by_id.get(exp["recv_id"])
        if rec is None:
            problems.append(f"{exp['recv_id']}: never completed at the server")
        elif rec["bytes"] != exp["bytes"] or rec["crc"] != exp["crc"]:
            problems.append(
                f"{exp['recv_id']}: server got {rec['bytes']} B crc {rec['crc']}, "
                f"expected {exp['bytes']} B crc {exp['crc']}"
            )
    return problems


def analyse(scenario: str, res: dict[str, Any], records: list[dict[str, Any]]) -> Metrics:
    """Turn one client result plus the server's records into the scenario's metrics."""
    by_id = {r["recv_id"]: r for r in records}
    if scenario in ("backlog", "pace"):
        rec = by_id[scenario]
        elapsed = res["t_closed"] - res["t0"]
        return {
            "time_s": elapsed,
            "cpu_s": res["cpu"],
            "write_s": res["t_written"] - res["t0"],
            "mb_per_s": rec["bytes"] / elapsed / 1e6,
            "chunks": rec["chunks"],
            "reads": rec["reads"],
        }
    if scenario == "latency":
        events = by_id["latency"]["events"]
        latencies = []
        j = 0
        # The first write also carries the request head; steady-state writes are what we time.
        for stamp, offset in list(zip(res["stamps"], res["offsets"], strict=True))[1:]:
            while events[j][1] < offset:
                j += 1
            latencies.append((events[j][0] - stamp) * 1000)
        return {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies),
            "chunks": by_id["latency"]["chunks"],
            "samples_ms": latencies,  # pooled by summarise()
        }
    if scenario == "many":
        ttfb = [
            (by_id[rid]["t_first"] - start) * 1000
            for rid, start in res["starts"].items()
            if rid in by_id
        ]
        return {
            "wall_s": res["wall"],
            "cpu_s": res["cpu"],
            "ttfb_p50_ms": percentile(ttfb, 50),
            "ttfb_p99_ms": percentile(ttfb, 99),
            "peak_rss_mib": res["peak_rss_kib"] / 1024,
            "rss_growth_mib": (res["peak_rss_kib"] - res["rss_before_kib"]) / 1024,
            "client_errors": len(res["errors"]),
        }
    if scenario == "setup":
        n = len(res["durations"])
        return {
            "per_stream_ms": res["total"] / n * 1000,
            "cpu_per_stream_ms": res["cpu"] / n * 1000,
            "p50_ms": percentile([d * 1000 for d in res["durations"]], 50),
            "streams_per_s": n / res["total"],
        }
    if scenario == "stall":
        growth = (res["peak_rss_kib"] - res["rss_before_kib"]) / 1024
        return {
            "growth_mib": growth,
            "growth_beyond_text_mib": growth - res.get("transcript_bytes", 0) / 1024 / 1024,
            "push_s": res["t_written"] - res["t0"],
            "total_s": res["t_closed"] - res["t0"],
        }
    if scenario == "webhook":
        done = [rid for rid in res["sent"] if rid in by_id]
        ttfb = [(by_id[rid]["t_first"] - res["sent"][rid]) * 1000 for rid in done]
        first = min(res["sent"].values())
        last = max(by_id[rid]["t_end"] for rid in done)
        return {
            "events_per_s": len(done) / (last - first),
            "ttfb_p50_ms": percentile(ttfb, 50),
            "ttfb_p99_ms": percentile(ttfb, 99),
            "cpu_s": res["cpu"],
        }
    raise ValueError(scenario)


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Row:
    """One line of the table: a metric of a scenario, and our target for it, if any."""

    scenario: str
    metric: str
    label: str
    unit: str
    target: str = ""
    # (ours median, its ratio or delta to the floor, every implementation's median)
    check: Callable[[float, float, dict[str, float]], bool] | None = None
    compare: str = "ratio"  # "ratio" (ours/floor) or "delta" (ours - floor)
    pooled_percentile: float | None = None  # percentile over all repeats' samples_ms


def rows(buffer_mib: float, sizes: dict[str, dict[str, Any]]) -> list[Row]:
    stall_bound = buffer_mib + 4
    b, p, lat, m, st, sl, wh = (sizes[k] for k in ("backlog", "pace", "latency", "many",
                                                    "setup", "stall", "webhook"))
    return [
        Row("backlog", "time_s", f"backlog: {b['writes']:,} writes of 20 B, no yield — time",
            "s", "≤ 0.10× floor", lambda v, r, _: r <= 0.10),
        Row("backlog", "cpu_s", "backlog — client CPU time", "s"),
        Row("backlog", "chunks", "backlog — HTTP chunks sent", ""),
        Row("pace", "time_s", f"token pace: {p['writes']:,} writes of 20 B, yield after each "
            "— time", "s", "≤ 0.75× floor", lambda v, r, _: r <= 0.75),
        Row("pace", "cpu_s", "token pace — client CPU time", "s"),
        Row("pace", "chunks", "token pace — HTTP chunks sent", ""),
        Row("latency", "p50_ms", f"latency: {lat['writes']} writes {lat['interval'] * 1000:g} ms "
            "apart — p50 write→server (all repeats pooled)", "ms",
            "≤ floor + 0.05 ms", lambda v, d, _: d <= 0.05, compare="delta",
            pooled_percentile=50),
        Row("latency", "p99_ms", "latency — p99 write→server (all repeats pooled)", "ms",
            "≤ floor + 0.3 ms", lambda v, d, _: d <= 0.3, compare="delta", pooled_percentile=99),
        Row("many", "wall_s", f"many: {m['streams']:,} streams × {m['writes']} writes "
            f"{m['interval'] * 1000:g} ms apart — wall", "s",
            "≤ naive", lambda v, r, peers: v <= peers.get("naive", v)),
        Row("many", "cpu_s", "many — client CPU time", "s"),
        Row("many", "ttfb_p99_ms", "many — p99 time to first byte at server", "ms",
            "≤ naive", lambda v, r, peers: v <= peers.get("naive", v)),
        Row("many", "peak_rss_mib", "many — client peak RSS", "MiB"),
        Row("many", "errors", "many — errors", "", "0", lambda v, r, _: v == 0),
        Row("setup", "per_stream_ms", f"stream setup: {st['streams']:,} sequential "
            "open-write-close — time per stream", "ms", "≤ naive and ≤ 2.0× floor",
            lambda v, r, peers: r <= 2.0 and v <= peers.get("naive", v)),
        Row("setup", "p50_ms", "stream setup — p50 per stream", "ms"),
        Row("setup", "cpu_per_stream_ms", "stream setup — client CPU per stream", "ms"),
        Row("setup", "streams_per_s", "stream setup — streams/s", "/s"),
        Row("stall", "growth_mib", f"stalled server {sl['stall_ms'] / 1000:g} s, {sl['mib']} MiB "
            "pushed — client RSS growth", "MiB",
            f"≤ {stall_bound:.2f} MiB", lambda v, r, _: v <= stall_bound),
        Row("stall", "growth_beyond_text_mib", "stalled — RSS growth beyond the kept transcript",
            "MiB"),
        Row("webhook", "events_per_s", f"webhook bot: {wh['events']:,} events posted at "
            f"{wh['rate']}/s, 3-token streamed reply each — events/s sustained", "/s",
            "≥ naive", lambda v, r, peers: v >= peers.get("naive", v)),
        Row("webhook", "ttfb_p99_ms", "webhook — p99 event posted → reply's first byte", "ms",
            "≤ naive", lambda v, r, peers: v <= peers.get("naive", v)),
        Row("webhook", "ttfb_p50_ms", "webhook — p50 event posted → reply's first byte", "ms"),
        Row("webhook", "cpu_s", "webhook — bot process CPU time", "s"),
    ]


def summarise(
    runs: list[dict[str, Any]], impls: list[str], buffer_mib: float,
    sizes: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], bool]:
    """Median figures per (row, impl) and whether each of our targets is met."""
    by_key: dict[tuple[str, str, int], Metrics] = {}
    for run in runs:
        metrics = dict(run["metrics"] or {})
        metrics["errors"] = float(len(run["errors"]))
        by_key[(run["scenario"], run["impl"], run["repeat"])] = metrics
    table = []
    all_met = True
    scenarios_run = {run["scenario"] for run in runs}
    for row in rows(buffer_mib, sizes):
        if row.scenario not in scenarios_run:
            continue
        entry: dict[str, Any] = {"scenario": row.scenario, "metric": row.metric,
                                 "label": row.label, "unit": row.unit, "target": row.target,
                                 "compare": row.compare,
                                 "values": {}, "vs_floor": {}}
        for impl in impls:
            values = [
                metrics[row.metric] for (sc, im, _), metrics in by_key.items()
                if sc == row.scenario and im == impl and row.metric in metrics
            ]
            if row.pooled_percentile is not None:
                # Percentiles of latency over every sample of every repeat: a p99 of one
                # 600-sample run is its 6th-worst sample, too few to take a median of.
                samples: list[float] = []
                for (sc, im, _), metrics in by_key.items():
                    if sc == row.scenario and im == impl and "samples_ms" in metrics:
                        samples.extend(metrics["samples_ms"])
                values = [percentile(samples, row.pooled_percentile)] if samples else []
            if values:
                entry["values"][impl] = statistics.median(values)
        floor = entry["values"].get("floor")
        for impl, value in entry["values"].items():
            # Ratios (or differences) of the medians shown, so that the table reads consistently.
            if floor is None:
                entry["vs_floor"][impl] = None
            elif row.compare == "delta":
                entry["vs_floor"][impl] = value - floor
            else:
                entry["vs_floor"][impl] = value / floor if floor else None
        if row.check is not None:
            entry["met"] = {}
            for impl in TARGET_IMPLS:
                if impl not in entry["values"]:
                    continue
                rel_impl = entry["vs_floor"].get(impl)
                met = row.check(entry["values"][impl], rel_impl if rel_impl is not None else 0.0,
                                entry["values"])
                if row.metric == "errors":
                    met = all(
                        m["errors"] == 0 for (sc, im, _), m in by_key.items()
                        if sc == row.scenario and im == impl
                    )
                entry["met"][impl] = met
                if impl == "ours":
                    all_met = all_met and met
        table.append(entry)
    return table, all_met


def fmt(value: float, unit: str) -> str:
    if unit in ("", "/s") or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip() if unit != "/s" else text


def markdown(table: list[dict[str, Any]], impls: list[str], info: dict[str, Any]) -> str:
    judged = [i for i in TARGET_IMPLS if i in impls]
    lines = [
        f"Machine: {info['machine']['nproc']} CPU ({info['machine']['cpu']}), "
        f"Linux {info['machine']['kernel']}, Python {info['machine']['python']}, "
        f"aiohttp {info['machine']['aiohttp']}, httpx {info['machine']['httpx']}; "
        f"client loop: {info['loop']}, server loop: {info['server_loop']}; "
        f"mode: {info['mode']}, medians of {info['repeat']} run(s) "
        f"(httpx: {min(info['reference_repeats'], info['repeat'])}); nice {info['nice']}"
        f"{'; latency run under SCHED_FIFO' if info['realtime_latency'] else ''}; "
        f"commit {info['machine']['commit']}; CPU used by other processes during the runs: "
        f"median {info['foreign_cpus_median']}, max {info['foreign_cpus_max']}",
        "",
        "| scenario | " + " | ".join(impls) + " | target | "
        + " | ".join(f"met ({i})" for i in judged) + " |",
        "|---|" + "---:|" * len(impls) + "---|" + ":-:|" * len(judged),
    ]
    for entry in table:
        cells = []
        for impl in impls:
            value = entry["values"].get(impl)
            if value is None:
                cells.append("—")
                continue
            cell = fmt(value, entry["unit"])
            rel = entry["vs_floor"].get(impl)
            naive = entry["values"].get("naive")
            no_floor = "floor" not in entry["values"]
            if no_floor and naive and impl != "naive" and entry["metric"] != "errors":
                cell += f" ({value / naive:.2f}× naive)"  # no floor for this scenario
            if impl != "floor" and rel is not None and entry["metric"] not in ("errors",):
                if entry["compare"] == "delta":
                    cell += f" ({rel:+.2f})"
                else:
                    cell += f" ({rel:.2f}×)"
            cells.append(cell)
        met = [
            {True: "yes", False: "**no**"}.get(entry.get("met", {}).get(i), "") for i in judged
        ]
        lines.append(
            f"| {entry['label']} | " + " | ".join(cells) + f" | {entry['target']} | "
            + " | ".join(met) + " |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def run_client(
    server: Server, impl: str, scenario: str, tag: str, params: dict[str, Any], uvloop: bool,
    timeout: float, profile: Path | None = None, realtime: bool = False,
) -> tuple[dict[str, Any] | None, list[str]]:
    args = [sys.executable, str(HERE / "client.py"), impl, scenario, server.base_url(tag),
            json.dumps(params)] + (["--uvloop"] if uvloop else [])
    if profile is not None:
        args += ["--profile", str(profile)]
    def as_realtime() -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))

    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                              preexec_fn=as_realtime if realtime else None)
    except subprocess.TimeoutExpired:
        return None, [f"client timed out after {timeout:.0f} s"]
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return None, [f"client exited {proc.returncode}: " + " | ".join(tail)]
    return json.loads(proc.stdout), []


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark yunhu-stream against the floor, the naive design and httpx.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[1],
    )
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and one repeat (a smoke run, ~1 minute)")
    parser.add_argument("--scenario", action="append", choices=list(FULL),
                        help="run only this scenario (repeatable); default: all")
    parser.add_argument("--impl", action="append", choices=IMPL_ORDER[1:],
                        help="compare only this implementation with the floor (repeatable)")
    parser.add_argument("--repeat", type=int, help="runs per scenario (default 3, quick 1)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="event loop of the clients under test (default asyncio)")
    parser.add_argument("--server-loop", choices=("asyncio", "uvloop"), default=None,
                        help="event loop of the receiving server (default uvloop if installed)")
    parser.add_argument("--bot-option", action="append", default=[], metavar="NAME=JSON",
                        help="a Bot(...) keyword for ours, value as JSON, e.g. rate_limit=10 "
                             "(repeatable; default: rate_limit=null, see docs/performance.md)")
    parser.add_argument("--out", type=Path, help="JSON results path (default bench/results/…)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the runs, profile ours once per scenario with pyinstrument "
                             "and write DIR/<scenario>.txt")
    parser.add_argument("--plot", nargs="?", const=ROOT / "docs" / "perf", type=Path,
                        metavar="DIR", help="draw one bar chart per scenario (ratios to the "
                        "floor) into DIR (default docs/perf/); needs matplotlib")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per client run")
    parser.add_argument("--reference-repeats", type=int, metavar="N",
                        help="run httpx (the slow reference) in only the first N repeats "
                             "(default: 1 in full mode, to keep the run near 5 minutes)")
    parser.add_argument("--realtime-latency", action="store_true",
                        help="run the latency scenario's client and the server under SCHED_FIFO "
                             "(needs root): on a shared machine, other processes' time slices "
                             "otherwise dominate p99; the scenario is mostly idle, so this "
                             "starves no one")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="run the server and clients at this nice value (negative needs "
                             "root); on a shared machine -10 keeps other jobs from skewing runs")
    args = parser.parse_args()

    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except OSError as exc:
            parser.error(f"--nice {args.nice}: {exc}")
    if args.realtime_latency:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (OSError, AttributeError) as exc:
            parser.error(f"--realtime-latency: {exc}")
    sizes = QUICK if args.quick else FULL
    scenarios = args.scenario or list(FULL)
    repeat = args.repeat or (1 if args.quick else 3)
    reference_repeats = args.reference_repeats or (repeat if args.quick else 1)
    wanted = args.impl or DEFAULT_IMPLS
    impls = ["floor"] + [i for i in IMPL_ORDER[1:] if i in wanted]
    unavailable = ours_available() if "ours" in impls else None
    if unavailable:
        print(f"note: skipping ours ({unavailable})", file=sys.stderr)
        impls = [i for i in impls if not i.startswith("ours")]
    try:
        import uvloop  # noqa: F401

        have_uvloop = True
    except ImportError:
        have_uvloop = False
    if args.loop == "uvloop" and not have_uvloop:
        parser.error("--loop uvloop needs uvloop installed: .venv/bin/pip install uvloop")
    server_loop = args.server_loop or ("uvloop" if have_uvloop else "asyncio")
    bot_options: dict[str, Any] = {"rate_limit": None}
    for option in args.bot_option:
        name, sep, value = option.partition("=")
        if not sep:
            parser.error(f"--bot-option takes NAME=JSON, not {option!r}")
        try:
            bot_options[name] = json.loads(value)
        except ValueError:
            parser.error(f"--bot-option {name}: {value!r} is not JSON (strings need quotes)")
    buffer_bytes = bot_options.get("max_buffer_bytes", DEFAULT_BUFFER_BYTES)
    impl_options = {"ours": bot_options, "ours_silenced": bot_options}

    mode = "quick" if args.quick else "full"
    info: dict[str, Any] = {
        "machine": machine(), "mode": mode, "repeat": repeat, "loop": args.loop,
        "server_loop": server_loop, "scenarios": scenarios, "impls": impls,
        "sizes": {s: sizes[s] for s in scenarios}, "bot_options": bot_options,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nice": args.nice,
        "realtime_latency": args.realtime_latency,
        "reference_repeats": reference_repeats,
    }
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    server = Server(uvloop=server_loop == "uvloop")
    watch = CpuWatch(server.proc.pid)
    time.sleep(1.0)
    idle_before = watch.foreign_cpus()
    info["foreign_cpus_before"] = round(idle_before, 2)
    if idle_before > 0.2:
        print(f"warning: other processes are using {idle_before:.1f} CPUs of "
              f"{info['machine']['nproc']}; figures will be noisy", file=sys.stderr)
    try:
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        for rep in range(repeat):
            for scenario in scenarios:
                # Rotate the order each repeat so that no implementation always runs first.
                order = impls[rep % len(impls):] + impls[: rep % len(impls)]
                for impl in order:
                    if impl == "httpx" and rep >= reference_repeats:
                        continue
                    if impl not in SCENARIO_IMPLS.get(scenario, (impl,)):
                        continue
                    tag = f"{scenario}-{impl}-{rep}"
                    params = dict(sizes[scenario], impl_options=impl_options)
                    t = time.monotonic()
                    realtime = args.realtime_latency and scenario == "latency"
                    if realtime:
                        server.set_realtime(True)
                    try:
                        res, errors = run_client(
                            server, impl, scenario, tag, params, args.loop == "uvloop",
                            args.timeout, realtime=realtime,
                        )
                    finally:
                        if realtime:
                            server.set_realtime(False)
                    foreign = watch.foreign_cpus()
                    records = server.stats(tag, events=scenario == "latency")
                    metrics = None
                    if res is not None:
                        errors += verify(res["expected"], records)
                        errors += res.get("errors", [])
                        try:
                            metrics = analyse(scenario, res, records)
                        except (KeyError, IndexError, ZeroDivisionError) as exc:
                            errors.append(f"cannot analyse: {exc!r}")
                    runs.append({"scenario": scenario, "impl": impl, "repeat": rep,
                                 "metrics": metrics, "errors": errors[:20],
                                 "error_count": len(errors), "foreign_cpus": round(foreign, 2)})
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in (metrics or {}).items()
                                      if isinstance(v, (int, float)))
                    print(f"[{time.monotonic() - started:6.1f}s] {scenario:8s} {impl:6s} "
                          f"#{rep} ({time.monotonic() - t:.1f}s, other load {foreign:.2f} CPU) "
                          f"{shown}"
                          + (f"  ERRORS: {errors[:2]}" if errors else ""), file=sys.stderr)
        if args.profile and "ours" in impls:
            for scenario in scenarios:
                path = args.profile / f"{scenario}.txt"
                tag = f"{scenario}-ours-profile"
                params = dict(sizes[scenario], impl_options=impl_options)
                _, errors = run_client(server, "ours", scenario, tag, params,
                                       args.loop == "uvloop", args.timeout, profile=path)
                server.stats(tag, events=False)
                print(f"profile: {path}" + (f" ERRORS: {errors}" if errors else ""),
                      file=sys.stderr)
    finally:
        server.close()
        server_errors = server.errors().strip()
        server.stderr.close()
        if server_errors:
            print("bench server stderr:\n" + server_errors[-3000:], file=sys.stderr)

    table, all_met = summarise(runs, impls, buffer_bytes / 1024 / 1024, sizes)
    info["elapsed_s"] = round(time.monotonic() - started, 1)
    foreign_all = [run["foreign_cpus"] for run in runs]
    info["foreign_cpus_median"] = round(statistics.median(foreign_all), 2) if foreign_all else 0
    info["foreign_cpus_max"] = round(max(foreign_all), 2) if foreign_all else 0
    print(markdown(table, impls, info))
    label = f"{mode}-{args.loop}" + ("" if args.scenario is None else "-" + "+".join(scenarios))
    out = args.out or HERE / "results" / f"{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "table": table, "runs": runs}, indent=1) + "\n")
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({info['elapsed_s']} s)", file=sys.stderr)
    if args.plot is not None:
        from plot import plot

        for path in plot(out, args.plot):
            print(f"plot: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
                  file=sys.stderr)
    failed = any(run["error_count"] for run in runs)
    return 1 if failed or (args.strict and not all_met) else 0


if __name__ == "__main__":
    sys.exit(main())
