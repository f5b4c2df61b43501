"""``make demo``: the nightly example DAG end to end, against the local emulator.

Starts the emulator on a free loopback port (processing at a visible pace), writes three JSONL
input files, runs ``example_xai_batch_nightly`` with ``airflow dags test`` in a private Airflow
home, shows progress while the batch is processed, stops the emulator and prints where the
outputs are, with the counts and the cost.

With ``XAI_API_KEY`` set and ``XAI_BASE_URL`` unset, the same run targets the real xAI service
instead of the emulator (and costs real money).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from airflow_provider_xai_batch.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "demo-output"
DAG_ID = "example_xai_batch_nightly"
EMULATOR_KEY = "demo-key"
REQUESTS_PER_FILE = 120
REAL_SERVICE = "https://api.x.ai"

TOPICS = [
    "a delayed parcel",
    "a broken kettle",
    "a great hotel stay",
    "an app that keeps crashing",
    "a helpful support call",
    "a noisy neighbour",
    "a perfect birthday cake",
    "a late train",
]


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def write_inputs(folder: Path, model: str) -> int:
    """Three files mixing the accepted shapes; a few requests fail on purpose (max_tokens <= 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for part in range(3):
        with (folder / f"prompts-part-{part}.jsonl").open("w") as out:
            for line in range(REQUESTS_PER_FILE):
                topic = TOPICS[(part * REQUESTS_PER_FILE + line) % len(TOPICS)]
                body = {
                    "model": model,
                    "max_tokens": -1 if line % 40 == 39 else 60,
                    "messages": [{"role": "user", "content": f"Write a one-sentence review about {topic}."}],
                }
                if line % 3 == 0:  # the JSONL/OpenAI shape
                    row = {
                        "custom_id": f"p{part}-{line:04d}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": body,
                    }
                elif line % 3 == 1:  # the short shape, with no id: one is derived from file and line
                    row = {"body": body}
                else:  # the native shape
                    row = {
                        "batch_request_id": f"p{part}-{line:04d}",
                        "batch_request": {"chat_get_completion": body},
                    }
                out.write(json.dumps(row) + "\n")
                count += 1
    return count


@contextlib.contextmanager
def emulator() -> Iterator[str]:
    try:
        with EmulatorProcess(EMULATOR_KEY, processing_rate=25, error_rate=0.03) as process:
            yield process.url
    finally:
        say("emulator stopped")


def watch_progress(base_url: str, api_key: str, stop: threading.Event) -> None:
    """Print the newest batch's counters every few seconds while the DAG waits on it."""
    headers = {"Authorization": f"Bearer {api_key}"}
    last = ""
    while not stop.wait(3):
        try:
            batches = httpx.get(
                f"{base_url}/v1/batches", params={"limit": 1}, headers=headers, timeout=10
            ).json()
        except httpx.HTTPError:
            continue
        if not batches.get("batches"):
            continue
        batch = batches["batches"][0]
        state = batch.get("state") or {}
        total = state.get("num_requests") or 0
        done = total - (state.get("num_pending") or 0)
        line = f"progress: {batch['batch_id']} {done}/{total} done ({state.get('num_error') or 0} failed)"
        if line != last and total:
            say(line)
            last = line


def run_dag(env: dict[str, str], base_url: str, api_key: str) -> None:
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run(
        [*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stop = threading.Event()
    watcher = threading.Thread(target=watch_progress, args=(base_url, api_key, stop), daemon=True)
    watcher.start()
    log_path = OUTPUT / "airflow-dags-test.log"
    try:
        with log_path.open("w") as log:
            result = subprocess.run(
                [*airflow, "dags", "test", DAG_ID], env=env, stdout=log, stderr=subprocess.STDOUT
            )
    finally:
        stop.set()
        watcher.join()
    if result.returncode != 0:
        print(log_path.read_text()[-4000:])
        raise SystemExit(f"the DAG run failed (full log: {log_path})")


def main() -> int:
    real = bool(os.environ.get("XAI_API_KEY")) and not os.environ.get("XAI_BASE_URL")
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir()
    model = os.environ.get("XAI_BATCH_MODEL", "grok-4.3")
    count = write_inputs(OUTPUT / "input", model)
    say(f"wrote {count} requests in 3 JSONL files under {OUTPUT / 'input'}")
    home = Path(tempfile.mkdtemp(prefix="xai-batch-demo-airflow-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "XAI_BATCH_INPUT": f"file://{OUTPUT / 'input'}/*.jsonl",
        "XAI_BATCH_OUTPUT": f"file://{OUTPUT / 'results'}",
        "XAI_BATCH_POLL_SECONDS": "2",
    }
    try:
        if real:
            say(f"XAI_API_KEY is set and XAI_BASE_URL is not: using the real service at {REAL_SERVICE}")
            env["AIRFLOW_CONN_XAI_DEFAULT"] = json.dumps({"conn_type": "xai", "host": REAL_SERVICE})
            run_dag(env, REAL_SERVICE, os.environ["XAI_API_KEY"])
        else:
            with emulator() as url:
                say(f"emulator listening on {url} (processing 25 requests/s, 3% random failures)")
                env["AIRFLOW_CONN_XAI_DEFAULT"] = json.dumps(
                    {"conn_type": "xai", "password": EMULATOR_KEY, "host": url}
                )
                env.pop("XAI_API_KEY", None)
                say(f"running {DAG_ID} with 'airflow dags test' (deferrable wait, polling every 2 s)")
                run_dag(env, url, EMULATOR_KEY)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    manifest = json.loads((OUTPUT / "results" / "manifest.json").read_text())
    say("done")
    print(f"    batch:      {manifest['batch_id']}")
    print(
        f"    requests:   {manifest['total']} ({manifest['succeeded']} succeeded, {manifest['failed']} failed, "
        f"{manifest['cancelled']} cancelled)"
    )
    print(
        f"    cost:       {manifest['cost_usd_ticks']:,} ticks = {manifest['cost_usd_ticks'] / 1e10:.6f} USD"
    )
    for kind, uri in manifest["files"].items():
        print(f"    {kind + ':':<11} {uri}")
    print(f"    manifest:   {OUTPUT / 'results' / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
