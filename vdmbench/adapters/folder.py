"""Videos made elsewhere, scored as if a model had generated them.

Files are matched to (prompt, seed) requests by, in order:
- a manifest (CSV with columns prompt_id or prompt, seed, path; or a JSON list of such objects,
  or {"videos": [...]});
- VBench naming `{prompt}-{i}.mp4` (i = the request's seed, as VBench's sample index; the prompt
  as written, or sanitized as `vdmbench.core.naming.vbench_filename` does for unsafe texts);
- `{prompt_id}-{seed}.mp4`, `{prompt_id}-s{seed}.mp4` or `{prompt_id}.mp4`.

Extensions match in any case (`clip.MP4` like `clip.mp4`). Two files with one name and different
extensions (`a.mp4` and `a.gif`) are ambiguous: that request fails naming both, rather than one
being picked silently. A missing video fails only its own sample, with the name that was expected and the closest names
found; `coverage()` (and `vdmbench vbench check SUITE FOLDER`) lists every missing and extra file
before a run.

    # adapters/my-videos.yaml
    name: my-videos
    adapter: folder
    params: {path: /data/my_model_outputs}
"""

from __future__ import annotations

import csv
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

from vdmbench.adapters.base import TASKS, AdapterContext, BaseAdapter, Capabilities, GenerationRequest
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.naming import safe_filename, vbench_filename
from vdmbench.core.video import VIDEO_EXTENSIONS, Video, read_video


@dataclass
class Coverage:
    """How a folder covers a list of requests."""

    found: int = 0
    missing: list[str] = field(default_factory=list)  # "prompt_id seed N: expected NAME"
    extra: list[str] = field(default_factory=list)  # video files no request matches

    def summary(self) -> str:
        return f"{self.found} found, {len(self.missing)} missing, {len(self.extra)} extra"


class FolderAdapter(BaseAdapter):
    def __init__(self, name: str, path: str, manifest: str | None = None, trim: bool = True, *,
                 context: AdapterContext | None = None) -> None:
        super().__init__(name, context=context)
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"model {name!r}: video folder {self.root} does not exist")
        self.trim = trim  # keep the first num_frames frames of longer videos
        self.files = {p.name: p for p in sorted(self.root.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS}
        self.by_stem: dict[str, list[Path]] = {}  # name without its extension -> files (any case)
        for p in self.files.values():
            self.by_stem.setdefault(p.name[: -len(p.suffix)], []).append(p)
        self.manifest = self._read_manifest(manifest) if manifest else {}
        self.used: set[str] = set()
        self.capabilities = Capabilities(tasks=TASKS, batch_size=8)

    def _read_manifest(self, manifest: str) -> dict[tuple[str, int], Path]:
        mpath = Path(manifest).expanduser()
        if not mpath.is_absolute():
            mpath = self.root / mpath
        if not mpath.is_file():
            raise ConfigError(f"model {self.name!r}: manifest {mpath} not found")
        try:
            if mpath.suffix.lower() == ".json":
                rows = json.loads(mpath.read_text())
            else:
                with open(mpath, newline="") as f:
                    rows = list(csv.DictReader(f))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{mpath}: cannot read manifest ({e})") from e
        if isinstance(rows, dict) and isinstance(rows.get("videos"), list):
            rows = rows["videos"]
        if not isinstance(rows, list):
            raise ConfigError(f"{mpath}: a JSON manifest must be a list of rows (or {{\"videos\": [...]}})")
        out: dict[tuple[str, int], Path] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ConfigError(f"{mpath}: row {i} must be an object with prompt_id/prompt, seed, path")
            key = row.get("prompt_id") or row.get("prompt")
            if not key or "path" not in row:
                raise ConfigError(f"{mpath}: row {i} needs 'path' and 'prompt_id' or 'prompt'")
            try:
                seed = int(row.get("seed", 0))
            except ValueError as e:
                raise ConfigError(f"{mpath}: row {i}: seed must be an integer") from e
            p = Path(row["path"])
            out[(str(key), seed)] = p if p.is_absolute() else self.root / p
        return out

    def candidates(self, req: GenerationRequest) -> list[Path]:
        """The files that may hold this request's video, best first. Raises AdapterError when one
        name exists with several extensions (nothing says which one is meant)."""
        pid = str(req.extra.get("prompt_id", ""))
        found = [self.manifest[k] for k in ((pid, req.seed), (req.prompt, req.seed)) if k in self.manifest]
        stems = [f"{req.prompt}-{req.seed}", vbench_filename(req.prompt, req.seed, suffix=""),
                 f"{safe_filename(req.prompt, 200)}-{req.seed}"]
        if pid:
            stems += [f"{pid}-{req.seed}", f"{pid}-s{req.seed}", pid]
        for stem in dict.fromkeys(stems):
            same = self.by_stem.get(stem, [])
            if len(same) > 1 and not found:  # the best match is ambiguous
                names = " and ".join(repr(p.name) for p in same)
                raise AdapterError(f"{names} in {self.root} both match prompt {req.prompt!r} seed {req.seed}; "
                                   "remove one or name the file in a manifest")
            found += same
        return found

    def generate_one(self, request: GenerationRequest) -> Video:
        paths = self.candidates(request)
        if not paths:
            raise AdapterError(self._missing_text(request))
        self.used.add(paths[0].name)
        return read_video(paths[0], num_frames=request.num_frames if self.trim else None)

    def extra_files(self) -> list[str]:
        """Files in the folder that no request has used so far."""
        return sorted(set(self.files) - self.used)

    def _missing_text(self, req: GenerationRequest) -> str:
        expected = vbench_filename(req.prompt, req.seed)
        close = difflib.get_close_matches(expected, list(self.files), n=2, cutoff=0.75)
        hint = f"; closest files: {', '.join(repr(c) for c in close)}" if close else ""
        return (f"no video for prompt {req.prompt!r} seed {req.seed} in {self.root} "
                f"(expected e.g. '{expected}' or a manifest row){hint}")

    def coverage(self, requests: list[GenerationRequest]) -> Coverage:
        """Which requests have a video, which do not, and which files no request matches."""
        cov = Coverage()
        used: set[Path] = set()
        for req in requests:
            try:
                paths = [p for p in self.candidates(req) if p.is_file()]
            except AdapterError as e:  # ambiguous: two files for one request
                cov.missing.append(f"{req.extra.get('prompt_id', '?')} seed {req.seed}: {e}")
                continue
            if paths:
                cov.found += 1
                used.add(paths[0].resolve())
            else:
                cov.missing.append(f"{req.extra.get('prompt_id', '?')} seed {req.seed}: {self._missing_text(req)}")
        cov.extra = sorted(name for name, p in self.files.items() if p.resolve() not in used)
        return cov


ADAPTER = FolderAdapter
