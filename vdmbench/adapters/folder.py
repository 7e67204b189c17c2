"""Videos made elsewhere, scored as if a model had generated them.

Files are matched to (prompt, seed) requests by, in order:
- a manifest (CSV with columns prompt_id or prompt, seed, path; or a JSON list of such objects);
- VBench naming `{prompt}-{i}.mp4` (i = the request's seed, as VBench's sample index);
- `{prompt_id}-{seed}.mp4`, `{prompt_id}-s{seed}.mp4` or `{prompt_id}.mp4`.

    # adapters/my-videos.yaml
    name: my-videos
    adapter: folder
    params: {path: /data/my_model_outputs}
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vdmbench.adapters.base import TASKS, Capabilities, GenerationRequest
from vdmbench.errors import AdapterError, ConfigError
from vdmbench.naming import safe_filename
from vdmbench.video import VIDEO_EXTENSIONS, Video, read_video


class FolderAdapter:
    def __init__(self, name: str, path: str, manifest: str | None = None, trim: bool = True) -> None:
        self.name = name
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"model {name!r}: video folder {self.root} does not exist")
        self.trim = trim  # keep the first num_frames frames of longer videos
        self.files = {p.name: p for p in sorted(self.root.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS}
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
        out: dict[tuple[str, int], Path] = {}
        for i, row in enumerate(rows):
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
        pid = str(req.extra.get("prompt_id", ""))
        found = [self.manifest[k] for k in ((pid, req.seed), (req.prompt, req.seed)) if k in self.manifest]
        stems = [f"{req.prompt}-{req.seed}", f"{safe_filename(req.prompt, 200)}-{req.seed}"]
        if pid:
            stems += [f"{pid}-{req.seed}", f"{pid}-s{req.seed}", pid]
        for stem in stems:
            for ext in VIDEO_EXTENSIONS:
                name = stem + ext
                if name in self.files:
                    found.append(self.files[name])
        return found

    def generate(self, requests: list[GenerationRequest]) -> list[Video | Exception]:
        out: list[Video | Exception] = []
        for req in requests:
            paths = self.candidates(req)
            if not paths:
                out.append(AdapterError(
                    f"{self.name}: no video for prompt {req.prompt!r} seed {req.seed} in {self.root} "
                    f"(expected e.g. '{req.prompt}-{req.seed}.mp4' or a manifest row)"
                ))
                continue
            self.used.add(paths[0].name)
            try:
                out.append(read_video(paths[0], num_frames=req.num_frames if self.trim else None))
            except Exception as e:
                out.append(e if isinstance(e, AdapterError) else AdapterError(str(e)))
        return out

    def extra_files(self) -> list[str]:
        """Files in the folder that no request has used so far."""
        return sorted(set(self.files) - self.used)


ADAPTER = FolderAdapter
