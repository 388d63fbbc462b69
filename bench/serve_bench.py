"""Benchmark: `mlwright serve` against `mlflow models serve` on the same registered model.

Usage:  python bench/serve_bench.py [--seconds 10] [--connections 8] [--rounds 3]
        [--load auto|wrk|python] [--out bench/results/serving.md]

Trains one LightGBM model on a bundled dataset (Benefits) into a private MLflow store, then
serves the same registered version with both servers on 127.0.0.1, one worker each (mlwright
twice: with monitoring on, its default, and with ``--no-monitor``). mlwright is measured on both
of its routes: ``/v1/predict`` (its own body) and ``/invocations`` with the very bytes sent to
MLflow's ``/invocations`` (a ``dataframe_split`` body). Each is driven with the same load
generator: wrk (Debian's package `wrk`) when it is installed, else a
bounded Python load generator (threads with keep-alive connections). Single-row requests at N
connections, then 1,000-row requests at one connection; each measurement runs ``--rounds`` times,
alternating between the servers, and the median round is reported. The load generator shares the
machine's cores with the server, for both servers alike.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlwright as mw

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} not ready")


def load(port: int, path: str, body: bytes, seconds: float, connections: int) -> dict[str, float]:
    """The Python load generator: ``connections`` threads, each with a keep-alive connection."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / seconds,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
        "errors": errors[0],
    }


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def load_wrk(
    port: int, path: str, body: bytes, seconds: float, connections: int, work: Path
) -> dict[str, float]:
    """wrk with as many threads as connections allow (at most 2), latency percentiles on."""
    body_file, script = work / "body.json", work / "post.lua"
    body_file.write_bytes(body)
    script.write_text(_WRK_SCRIPT)
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    env = {**os.environ, "BENCH_BODY": str(body_file)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        return float(match.group(1)) * _UNITS[match.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = (int(bad.group(1)) if bad else 0) + (
        sum(int(g) for g in sockets.groups()) if sockets else 0
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": requests,
        "rps": rps,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": errors,
    }


def check_answer(port: int, path: str, body: bytes) -> None:
    """Fail unless ``path`` answers ``body`` with 200 and one prediction."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    text = response.read()
    conn.close()
    if response.status != 200 or len(json.loads(text)["predictions"]) != 1:
        raise SystemExit(f"{path} on port {port} answered {response.status}: {text[:300]!r}")


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    return sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "serving.md")
    args = parser.parse_args()
    work = ROOT / ".work" / "serve"
    work.mkdir(parents=True, exist_ok=True)
    use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk") is not None)
    if args.load == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    def drive(port: int, path: str, body: bytes, seconds: float, conns: int) -> dict[str, float]:
        if use_wrk:
            return load_wrk(port, path, body, seconds, conns, work)
        return load(port, path, body, seconds, conns)

    uri = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    frame = mw.load_dataset("Benefits")
    model = mw.train(
        frame, target="ui", name="benefits-bench", max_trials=1, families=("lightgbm",), seed=0
    )
    assert model.registry is not None
    ref = f"benefits-bench/{model.registry['version']}"
    records = frame.drop(columns="ui").to_dict(orient="records")
    one_ours = json.dumps({"records": records[:1]}).encode()
    batch_ours = json.dumps({"records": (records * 2)[:1000]}).encode()
    columns = [c for c in frame.columns if c != "ui"]

    def split(rows: list[dict[Any, Any]]) -> bytes:
        data = [[r[c] for c in columns] for r in rows]
        return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()

    one_mlflow, batch_mlflow = split(records[:1]), split((records * 2)[:1000])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlwright = [str(BIN / "mlwright"), "serve", ref]
    servers = {  # label → (command, readiness path)
        "mlwright serve": ([*mlwright, "--store", str(work / "serve.db")], "/ready"),
        "mlwright serve --no-monitor": (
            [*mlwright, "--store", str(work / "serve-unmonitored.db"), "--no-monitor"],
            "/ready",
        ),
        "mlflow models serve": (
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/{ref}",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
            ],
            "/ping",
        ),
    }
    # what is measured: label → (server, route, single-row body, 1,000-row body); mlwright's
    # /invocations gets the very bytes MLflow's gets
    targets = {
        "mlwright serve /v1/predict": ("mlwright serve", "/v1/predict", one_ours, batch_ours),
        "mlwright serve /invocations": (
            "mlwright serve",
            "/invocations",
            one_mlflow,
            batch_mlflow,
        ),
        "mlwright serve --no-monitor /v1/predict": (
            "mlwright serve --no-monitor",
            "/v1/predict",
            one_ours,
            batch_ours,
        ),
        "mlflow models serve /invocations": (
            "mlflow models serve",
            "/invocations",
            one_mlflow,
            batch_mlflow,
        ),
    }
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {
        label: {"single": [], "batch": []} for label in targets
    }
    try:
        for label, (command, ready) in servers.items():
            port = free_port()
            full = [*command, "--port" if label.startswith("mlwright") else "-p", str(port)]
            log = (work / f"{label.replace(' ', '_').replace('-', '')}.log").open("wb")
            procs[label] = (
                subprocess.Popen(
                    full, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                ),
                port,
            )
            wait(f"http://127.0.0.1:{port}{ready}", procs[label][0])
        for server, path, one, batch in targets.values():  # warm-up, and a check
            port = procs[server][1]
            check_answer(port, path, one)
            drive(port, path, one, 2.0, args.connections)
            drive(port, path, batch, 2.0, 1)
        for i in range(args.rounds):  # alternate, so that drifts of the machine hit all alike
            for label, (server, path, one, batch) in targets.items():
                port = procs[server][1]
                rounds[label]["single"].append(
                    drive(port, path, one, args.seconds, args.connections)
                )
                rounds[label]["batch"].append(drive(port, path, batch, args.seconds, 1))
                print(
                    f"round {i + 1}",
                    label,
                    {k: v[-1] for k, v in rounds[label].items()},
                    flush=True,
                )
    finally:
        for proc, _ in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    results = {
        label: {kind: median_round(r) for kind, r in measures.items()}
        for label, measures in rounds.items()
    }
    theirs = results["mlflow models serve /invocations"]
    routes = {
        route: results[f"mlwright serve {route}"] for route in ("/v1/predict", "/invocations")
    }
    unmonitored = results["mlwright serve --no-monitor /v1/predict"]
    generator = (
        "wrk (Debian's package) with keep-alive connections"
        if use_wrk
        else "a Python load generator with keep-alive connections"
    )
    lines = [
        "# Serving: `mlwright serve` (both routes) vs `mlflow models serve`, monitoring on and off",
        "",
        f"Command: `python bench/serve_bench.py --seconds {args.seconds:g} --connections "
        f"{args.connections} --rounds {args.rounds}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, mlwright {mw.__version__}. Model: LightGBM on Benefits "
        f"({len(columns)} features), registry version {ref}; one worker per server, started "
        f"with its defaults; load from {generator}, on the same cores. Single rows at "
        f"{args.connections} connections, 1,000-row requests at one connection, "
        f"{args.seconds:g} s each; {args.rounds} rounds alternating between the servers, the "
        "median round shown. Both `/invocations` rows get the same bytes: a `dataframe_split` "
        'body; `/v1/predict` gets the same rows as `{"records": [...]}`.',
        "",
        "| server | route | single row: req/s | p50 ms | p99 ms | errors | "
        "1,000-row batch: rows/s | p50 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        server, path, _, _ = targets[label]
        one_row, many = r["single"], r["batch"]
        lines.append(
            f"| {server} | `{path}` | {one_row['rps']:,.0f} | {one_row['p50_ms']:.1f} | "
            f"{one_row['p99_ms']:.1f} | {one_row['errors']:.0f} | {many['rps'] * 1000:,.0f} | "
            f"{many['p50_ms']:.1f} | {many['errors']:.0f} |"
        )
    lines.append("")
    for route, ours in routes.items():
        ratio = ours["single"]["rps"] / theirs["single"]["rps"]
        batch_rows = ours["batch"]["rps"] * 1000
        lines += [
            f"`{route}` against MLflow's `/invocations`: single-row throughput {ratio:.1f}×, "
            f"1,000-row batch {ours['batch']['rps'] / theirs['batch']['rps']:.1f}×. Targets: "
            f"single-row throughput at least 15× MLflow's: {'met' if ratio >= 15 else 'not met'} "
            f"({ratio:.1f}×); single-row p99 at most 10 ms: "
            f"{'met' if ours['single']['p99_ms'] <= 10 else 'not met'} "
            f"({ours['single']['p99_ms']:.1f} ms); a 1,000-row request at 100,000 rows/s or "
            f"more: {'met' if batch_rows >= 100_000 else 'not met'} ({batch_rows:,.0f} rows/s).",
            "",
        ]
    ours = routes["/v1/predict"]
    lines += [
        "mlwright's numbers include what MLflow's server does not do: schema validation with "
        "per-field errors, Prometheus metrics and the access log; on `/v1/predict`, also "
        "recording every prediction in the serving store, and (monitoring on, the default) "
        "counting every served value into the drift reference's bins, in the store's writer "
        "process.",
        "",
        "Monitoring on / off (`/v1/predict`): single-row throughput "
        f"{ours['single']['rps'] / unmonitored['single']['rps']:.2f}×, single-row p99 "
        f"{ours['single']['p99_ms']:.1f} vs {unmonitored['single']['p99_ms']:.1f} ms, "
        "1,000-row throughput "
        f"{ours['batch']['rps'] / unmonitored['batch']['rps']:.2f}×.",
        "",
        "All rounds (req/s):",
        "",
    ]
    for label, measures in rounds.items():
        for kind, measured in measures.items():
            lines.append(f"- {label}, {kind}: " + ", ".join(f"{x['rps']:,.1f}" for x in measured))
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
