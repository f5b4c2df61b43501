"""``make demo``: the nightly example DAG end to end, against the local emulator.

Starts the emulator on a free loopback port (processing at a visible pace), writes three JSONL
input files, runs ``example_xai_batch_nightly`` with ``airflow dags test`` in a private Airflow
home, shows progress while the batch is processed, stops the emulator and prints where the
outputs are, with the counts and the cost.

The demo never reaches the real xAI service unless asked explicitly: ``XAI_BATCH_DEMO_REAL=1``
(``XAI_BATCH_DEMO_REAL=1 make demo``) runs the same DAG against ``XAI_BASE_URL`` (default
``https://api.x.ai``) with ``XAI_API_KEY``, and costs real money. Without it, ``XAI_API_KEY`` and
``XAI_BASE_URL`` are ignored. The first line printed names the service used.

``--service-only`` prints that line (starting and stopping the emulator when it is the one) and
exits without running anything.
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
from sample_input import write_requests  # demo/sample_input.py, beside this script

from airflow_provider_xai_batch.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "demo-output"
DAG_ID = "example_xai_batch_nightly"
EMULATOR_KEY = "demo-key"
REQUESTS_PER_FILE = 120
REAL_SERVICE = "https://api.x.ai"
# The only way to send the demo's requests to the real service (and pay for them).
REAL_OPT_IN = "XAI_BATCH_DEMO_REAL"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def write_inputs(folder: Path, model: str) -> int:
    """Three files mixing the accepted shapes; a few requests fail on purpose (max_tokens <= 0)."""
    return write_requests(
        folder, model, files=3, per_file=REQUESTS_PER_FILE, stem="prompts-part", fail_every=40
    )


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


def real_service(environ: Mapping[str, str]) -> str | None:
    """The real service's base URL when the demo was asked to use it, else ``None`` (the emulator).

    Only ``XAI_BATCH_DEMO_REAL=1`` asks; an API key lying around in the environment does not.

    >>> real_service({"XAI_API_KEY": "xai-123"}) is None
    True
    >>> real_service({"XAI_BATCH_DEMO_REAL": "1", "XAI_API_KEY": "xai-123"})
    'https://api.x.ai'
    """
    if environ.get(REAL_OPT_IN, "").strip() != "1":
        return None
    if not environ.get("XAI_API_KEY"):
        raise SystemExit(f"{REAL_OPT_IN}=1 needs XAI_API_KEY (the key for the real service)")
    return environ.get("XAI_BASE_URL") or REAL_SERVICE


def main(argv: Sequence[str] = ()) -> int:
    service_only = "--service-only" in argv
    real = real_service(os.environ)
    if real is not None:
        say(f"using the REAL xAI service at {real} ({REAL_OPT_IN}=1): this run costs money")
    else:
        say(
            f"using the local emulator: nothing leaves this machine ({REAL_OPT_IN}=1 would use the real service)"
        )
        if os.environ.get("XAI_API_KEY") or os.environ.get("XAI_BASE_URL"):
            say("XAI_API_KEY and XAI_BASE_URL are ignored")
    if service_only:
        if real is None:
            with emulator() as url:
                say(f"using the local emulator at {url}")
        return 0
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
        if real is not None:
            env["AIRFLOW_CONN_XAI_DEFAULT"] = json.dumps({"conn_type": "xai", "host": real})
            run_dag(env, real, os.environ["XAI_API_KEY"])
        else:
            for name in ("XAI_API_KEY", "XAI_BASE_URL"):  # nothing may lead the run to the real service
                env.pop(name, None)
            with emulator() as url:
                say(f"using the local emulator at {url} (processing 25 requests/s, 3% random failures)")
                env["AIRFLOW_CONN_XAI_DEFAULT"] = json.dumps(
                    {"conn_type": "xai", "password": EMULATOR_KEY, "host": url}
                )
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
    sys.exit(main(sys.argv[1:]))
