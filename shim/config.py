"""Settings, read from the environment here and nowhere else: the server's (the variables Ollama reads, in
`Settings`) and the paths and switches the store uses.

The store's are functions, read at each call rather than once at start: `registry/` functions that resolve a
path have no `Settings` at hand, the Hugging Face cache variables are huggingface_hub's contract (it too reads
them at call time), and tests set them per test. The limits and timeouts (`shim/limits.py`) read theirs through
`env_number` and `env_switch`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from shim.accelerator import default_memory_budget, default_num_parallel
from shim.durations import default_keep_alive

VERSION = "0.24.0"  # the Ollama release whose API we mirror; clients parse it as dotted integers


@dataclass(frozen=True)
class Bind:
    scheme: str
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def hypercorn(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else (self.host or "0.0.0.0")
        return f"{host}:{self.port}"


def parse_ollama_host(raw: str | None) -> Bind:
    """Port of Ollama's envconfig.Host(): `host`, `host:port`, `:port`, `scheme://host:port/path`,
    `[::1]:port`; http defaults to 80 and https to 443 when a scheme is given, else 11434; an invalid
    port falls back to the default port."""
    s = (raw or "").strip()
    default_port = 11434
    scheme, sep, hostport = s.partition("://")
    if not sep:
        scheme, hostport = "http", s
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.split("/", 1)[0]
    host, port_text = _split_host_port(hostport)
    if port_text is None:
        host = hostport.strip("[]") or "127.0.0.1"
        port_text = str(default_port)
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        port = default_port
    return Bind(scheme, host, port)


def env_bind() -> Bind:
    """OLLAMA_HOST: where the server listens and the CLI's client commands connect."""
    return parse_ollama_host(os.environ.get("OLLAMA_HOST"))


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """Go's net.SplitHostPort: returns (host, None) where Go would return an error."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1 or not hostport[end + 1 :].startswith(":"):
            return hostport, None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return hostport, None
    host, port = hostport.split(":")
    return host, port


@dataclass(frozen=True)
class Settings:
    bind: Bind = field(default_factory=env_bind)
    context_length: int = field(default_factory=lambda: _env_int("OLLAMA_CONTEXT_LENGTH", 4096))
    keep_alive: float = field(default_factory=lambda: default_keep_alive(os.environ.get("OLLAMA_KEEP_ALIVE", "")))
    max_loaded_models: int = field(default_factory=lambda: _env_int("OLLAMA_MAX_LOADED_MODELS", 3))
    # Sequences decoding together per model. Ollama's default is 1; batching pays on every backend, by how much
    # depends on it: 4 on the CPU, 16 on CUDA, 8 on Metal (shim/accelerator.py and the README say why).
    num_parallel: int = field(default_factory=lambda: _env_int("OLLAMA_NUM_PARALLEL", default_num_parallel()))
    # New prompts prefilled together in one batch step: 16 arrivals prefill as two groups of 8 with decode
    # steps between (mlx-lm's own prefill batch size); capped at num_parallel.
    prefill_group: int = field(default_factory=lambda: _env_int("MLX_SHIM_PREFILL_GROUP", 8))
    max_queue: int = field(default_factory=lambda: _env_int("OLLAMA_MAX_QUEUE", 512))
    # Bytes the loaded models (weights and KV caches) may take: the accelerator's memory (the machine's on the
    # CPU backend) unless set.
    memory_budget: int = field(default_factory=lambda: _memory_budget())
    # Per loaded model: KV caches of finished requests kept for prefix reuse; 0 turns the prompt cache off.
    prompt_cache_bytes: int = field(default_factory=lambda: _env_bytes("MLX_SHIM_PROMPT_CACHE_BYTES", 1 << 30))
    # OLLAMA_ORIGINS: origins allowed besides the built-in local ones (comma-separated, `*` patterns).
    origins: str = field(default_factory=lambda: os.environ.get("OLLAMA_ORIGINS", ""))
    # Tests only: a JSON file of scripted answers (shim/engine/scripted.py); unset in any real server.
    test_scripts: str = field(default_factory=lambda: os.environ.get("MLX_SHIM_TEST_SCRIPTS", ""))


def _memory_budget() -> int:
    """MLX_SHIM_MEMORY_BUDGET, else (unset or unreadable) the accelerator's memory; asked only then."""
    value = _env_bytes("MLX_SHIM_MEMORY_BUDGET", -1)
    return value if value >= 0 else default_memory_budget()


def _env_bytes(name: str, default: int) -> int:
    """A byte count (0 allowed); unset or unreadable gives the default."""
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if value >= 0 else default


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if value > 0 else default


def env_number(name: str, default: float) -> float:
    """A non-negative number (seconds, bytes, a count); unset or unreadable gives the default."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def env_switch(name: str, default: bool) -> bool:
    """A switch: `0` or `false` turns it off, any other value on."""
    value = os.environ.get(name)
    return default if value is None else value not in ("0", "false")


def no_builtin() -> bool:
    """MLX_SHIM_NO_BUILTIN: skip creating the embedded default model at first start."""
    return bool(os.environ.get("MLX_SHIM_NO_BUILTIN"))


def store_home() -> Path:
    """MLX_SHIM_HOME: the model store (manifests, uploaded blobs, assembled models), `~/.mlx-shim` by default."""
    return Path(os.environ.get("MLX_SHIM_HOME") or Path.home() / ".mlx-shim")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved as huggingface_hub resolves it: HF_HUB_CACHE, the older
    HUGGINGFACE_HUB_CACHE, else `$HF_HOME/hub` (HF_HOME defaults to `$XDG_CACHE_HOME/huggingface`)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def ollama_models_override() -> Path | None:
    """OLLAMA_MODELS: where Ollama's own store is, when set (registry/ollama_library.py has the default)."""
    value = os.environ.get("OLLAMA_MODELS")
    return Path(value).expanduser() if value else None


def pull_chunk_bytes() -> int:
    """MLX_SHIM_PULL_CHUNK_BYTES: the read size of a pull's downloads, 1 MiB by default."""
    return int(os.environ.get("MLX_SHIM_PULL_CHUNK_BYTES") or 1 << 20)


def hub_timeout() -> float:
    """MLX_SHIM_HUB_TIMEOUT: seconds to connect to the hub and to wait for each next piece of its answer (30)."""
    return float(os.environ.get("MLX_SHIM_HUB_TIMEOUT") or 30)


def no_prune() -> bool:
    """OLLAMA_NOPRUNE: keep unreferenced blobs and model directories at start, as Ollama does when set."""
    return env_bool("OLLAMA_NOPRUNE")


def pipeline_split() -> bool:
    """MLX_SHIM_PIPELINE: under mlx.launch, split models by layers where mlx-lm can (`mlx_lm.server --pipeline`)
    rather than tensor parallel."""
    return env_bool("MLX_SHIM_PIPELINE")


def env_bool(name: str) -> bool:
    """Ollama's envconfig.Bool: unset or empty is false, Go's boolean words are themselves, anything else true."""
    raw = os.environ.get(name, "").strip().strip("\"'")
    if not raw:
        return False
    return raw not in ("0", "f", "F", "false", "FALSE", "False")


def log_level() -> str:
    """MLX_SHIM_LOG (a logging level name) when set, else DEBUG where OLLAMA_DEBUG asks for it as Ollama reads
    it (1, true, or a higher level such as 2), else INFO."""
    if level := os.environ.get("MLX_SHIM_LOG"):
        return level.upper()
    debug = os.environ.get("OLLAMA_DEBUG", "").strip().lower()
    if debug in ("true", "t", "1") or (debug.lstrip("-").isdigit() and int(debug) > 0):
        return "DEBUG"
    return "INFO"
