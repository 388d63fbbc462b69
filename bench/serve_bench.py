"""Benchmark: `mlwright serve` against `mlflow models serve` on the same registered model.

Usage:  python bench/serve_bench.py [--seconds 10] [--connections 8]
        [--out bench/results/serving.md]

Trains one LightGBM model on a bundled dataset (Benefits) into a private MLflow store, then
serves the same registered version with both servers on 127.0.0.1, one worker each, and drives
each with the same bounded Python load generator (threads with keep-alive connections): single
-row requests at N connections, then 1,000-row requests at one connection. The load generator
runs on the same cores as the server, for both servers alike.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "serving.md")
    args = parser.parse_args()
    work = ROOT / ".work" / "serve"
    work.mkdir(parents=True, exist_ok=True)
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

    def split(rows: list[dict[str, object]]) -> bytes:
        data = [[r[c] for c in columns] for r in rows]
        return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()

    one_mlflow, batch_mlflow = split(records[:1]), split((records * 2)[:1000])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    results: dict[str, dict[str, dict[str, float]]] = {}
    servers = {
        "mlwright serve": (
            [str(BIN / "mlwright"), "serve", ref, "--store", str(work / "serve.db")],
            "/v1/predict",
            "/ready",
            one_ours,
            batch_ours,
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
            "/invocations",
            "/ping",
            one_mlflow,
            batch_mlflow,
        ),
    }
    for label, (command, path, ready, one, batch) in servers.items():
        port = free_port()
        full = [*command, "--port" if label.startswith("mlwright") else "-p", str(port)]
        log = (work / f"{label.split()[0]}.log").open("wb")
        proc = subprocess.Popen(
            full, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait(f"http://127.0.0.1:{port}{ready}", proc)
            load(port, path, one, 2.0, args.connections)  # warm-up
            results[label] = {
                "single": load(port, path, one, args.seconds, args.connections),
                "batch": load(port, path, batch, args.seconds, 1),
            }
            print(label, results[label], flush=True)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    ours, theirs = results["mlwright serve"], results["mlflow models serve"]
    lines = [
        "# Serving: `mlwright serve` vs `mlflow models serve`",
        "",
        f"Command: `python bench/serve_bench.py --seconds {args.seconds:g} --connections "
        f"{args.connections}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, mlwright {mw.__version__}. Model: LightGBM on Benefits "
        f"({len(columns)} features), registry version {ref}; one worker per server; a Python "
        "load generator with keep-alive connections on the same cores.",
        "",
        "| server | single row: req/s | p50 ms | p99 ms | errors | 1,000-row batch: rows/s | "
        "p50 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        s, b = r["single"], r["batch"]
        lines.append(
            f"| {label} | {s['rps']:.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
            f"{s['errors']:.0f} | {b['rps'] * 1000:,.0f} | {b['p50_ms']:.1f} | {b['errors']:.0f} |"
        )
    lines += [
        "",
        f"Single-row throughput ratio (mlwright / MLflow): "
        f"{ours['single']['rps'] / theirs['single']['rps']:.2f}×; 1,000-row batch ratio: "
        f"{ours['batch']['rps'] / theirs['batch']['rps']:.2f}×.",
        "",
        "mlwright's numbers include what MLflow's server does not do: schema validation with "
        "per-field errors, Prometheus metrics, the access log and recording every prediction in "
        "the serving store.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
