"""Any diffusers pipeline that outputs video, as a model (text-to-video, image-to-video, video-to-video).

    # adapters/cogvideox-2b.yaml
    name: cogvideox-2b
    adapter: diffusers
    params:
      model: THUDM/CogVideoX-2b        # a Hub id or a local folder saved with save_pretrained
      pipeline: CogVideoXPipeline      # optional: the class in model_index.json is used otherwise
      dtype: float16                   # auto | float32 | float16 | bfloat16 (auto: fp16 on CUDA, fp32 on CPU)
      device: auto                     # auto | cpu | cuda | cuda:N
      cpu_offload: model               # none | model | sequential (CUDA only)
      vae_tiling: true
      size_policy: model               # model: the model's own frames/size/fps below; request: the suite's
      num_frames: 49
      height: 480
      width: 720
      fps: 8
      steps: 50                        # used where the suite leaves steps / guidance unset
      guidance: 6.0

Choices made here, and why:
- One `torch.Generator` per request, on the CPU by default and seeded with the request's seed: the
  initial noise then does not depend on the GPU or on which other requests share the batch.
- `output_type="np"` is always requested: the default differs per pipeline ("pil" for AnimateDiff
  and CogVideoX, "np" for Wan), and np is float [B, F, H, W, C] in [0, 1] everywhere.
- Size and frame constraints of the pipeline (VAE and patch strides, temporal compression) are
  checked before the call, because several pipelines silently round a bad size or frame count.
- Every torch module is put in eval mode: modules assembled in code start in train mode.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import model_validator

from vdmbench.adapters.base import (
    AdapterContext,
    AdapterParams,
    BaseAdapter,
    Capabilities,
    GenerationRequest,
    first_line,
)
from vdmbench.adapters.outputs import to_video
from vdmbench.config.schema import Problem, expected
from vdmbench.config.suite import Task
from vdmbench.core.errors import AdapterError, ConfigError
from vdmbench.core.video import Video

log = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}
_LOAD_KEYS = ("revision", "variant", "cache_dir", "local_files_only", "use_safetensors")


@dataclass(frozen=True)
class CallSettings:
    """The values one pipeline call is made with (requests with equal settings can share a batch)."""

    task: str
    num_frames: int
    height: int
    width: int
    fps: float
    steps: int | None
    guidance: float | None


def resolve_dtype(dtype: str | torch.dtype, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        # Half precision on CPU is slow and unsupported by many kernels; on CUDA it is the norm.
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _diffusers_attr(name: str, what: str) -> Any:
    import diffusers

    obj = getattr(diffusers, name, None)
    if obj is None:
        try:
            import transformers

            obj = getattr(transformers, name, None)
        except ImportError:
            obj = None
    if obj is None:
        raise ConfigError(f"{what} {name!r} is neither a diffusers nor a transformers class "
                          f"(diffusers {diffusers.__version__}); check the spelling or upgrade diffusers")
    return obj


def _no_accelerate(name: str, model: str) -> str:
    return (f"model {name!r}: loading {model!r} with diffusers needs accelerate, which is not installed; "
            "install accelerate: pip install accelerate (or pip install 'vdmbench[diffusers]')")


def _mentions_accelerate(e: BaseException) -> bool:
    """An error (or one it was raised from) caused by a missing accelerate package."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ImportError) and (cur.name or "").split(".")[0] == "accelerate":
            return True
        text = str(cur).lower()
        if "accelerate" in text and any(w in text for w in ("install", "not found", "no module", "import of")):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _is_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists()


def _dtype_key() -> str:
    """diffusers >= 0.36 takes `dtype=` and warns on the older `torch_dtype=`; older ones take only the latter."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def _first_attr(obj: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


def infer_size_multiple(pipe: Any) -> int:
    """Height and width must be multiples of the VAE's spatial stride times the transformer's patch."""
    spatial = _first_attr(pipe, ("vae_scale_factor_spatial", "vae_spatial_compression_ratio", "vae_scale_factor")) or 8
    patch = getattr(getattr(getattr(pipe, "transformer", None), "config", None), "patch_size", None)
    if isinstance(patch, (list, tuple)):
        patch = patch[-1]
    return int(spatial) * (int(patch) if isinstance(patch, int) and patch > 0 else 1)


def infer_frame_step(pipe: Any) -> int:
    """Pipelines with a temporally compressing VAE need num_frames = k * step + 1."""
    step = _first_attr(pipe, ("vae_scale_factor_temporal", "vae_temporal_compression_ratio"))
    return int(step) if isinstance(step, int) and step > 1 else 1


def infer_tasks(call_params: set[str]) -> tuple[str, ...]:
    """The tasks a pipeline's call signature serves. A pipeline that takes an `image` is an
    image-to-video one even where its signature defaults it to None (LTX-I2V, I2VGen-XL do)."""
    if "image" in call_params:
        return ("i2v",)
    if "video" in call_params:
        return ("editing",)
    return ("t2v",)


class DiffusersParams(AdapterParams):
    """The `params` of a diffusers model YAML (see the module docstring for an example)."""

    what: ClassVar[str] = "diffusers params"

    model: str | None = expected("a Hub id or a local folder saved with save_pretrained", default=None)
    pipeline: str | None = expected("a diffusers pipeline class (default: the one in model_index.json)", default=None)
    dtype: str = expected("auto, float32, float16 or bfloat16 (auto: fp16 on CUDA, fp32 on CPU)", default="auto")
    device: str = expected("auto (the run's device, else CUDA when available), cpu, cuda or cuda:N", default="auto")
    cpu_offload: Literal["none", "model", "sequential"] | bool | None = expected(
        "none, model or sequential (CUDA only; true means model)", default="none")
    attention_slicing: bool | int | str = expected("true, false, auto or a slice size", default=False)
    vae_tiling: bool = expected("true or false", default=False)
    vae_slicing: bool = expected("true or false", default=False)
    batch_size: int = expected("an integer >= 1 (text-to-video requests per pipeline call)", default=1, ge=1)
    tasks: list[Task] | None = expected("a list of tasks the pipeline can do (default: inferred)", default=None)
    size_policy: Literal["request", "model"] = expected(
        "request (the suite's frames/size/fps) or model (num_frames, height, width, fps below)", default="request")
    num_frames: int | None = expected("an integer >= 1", default=None, ge=1)
    height: int | None = expected("an integer >= 1", default=None, ge=1)
    width: int | None = expected("an integer >= 1", default=None, ge=1)
    fps: float | None = expected("a number > 0", default=None, gt=0)
    steps: int | None = expected("an integer >= 1 (used where the suite leaves steps unset)", default=None, ge=1)
    guidance: float | None = expected("a number (used where the suite leaves guidance unset)", default=None)
    negative_prompt: str | None = expected("a string", default=None)
    size_multiple: int | None = expected("an integer >= 1 (default: from the VAE and patch strides)", default=None, ge=1)
    frame_step: int | None = expected("an integer >= 1: num_frames = k * frame_step + 1", default=None, ge=1)
    max_frames: int | None = expected("an integer >= 1", default=None, ge=1)
    max_height: int | None = expected("an integer >= 1", default=None, ge=1)
    max_width: int | None = expected("an integer >= 1", default=None, ge=1)
    generator_device: str = expected("a device for the seeded torch.Generator of each request", default="cpu")
    components: dict[str, dict[str, Any]] | None = expected(
        "a mapping of component name -> {class, model, subfolder, revision, variant, dtype}", default=None)
    scheduler: dict[str, Any] | None = expected("a mapping {class: ..., config: {...}}", default=None)
    call_kwargs: dict[str, Any] | None = expected("a mapping passed to every pipeline call", default=None)
    load_kwargs: dict[str, Any] | None = expected(f"a mapping of {', '.join(_LOAD_KEYS)}", default=None)
    paid: bool = expected("true or false (a flag for the run plan; local pipelines cost nothing)", default=False)

    @model_validator(mode="after")
    def _consistent(self) -> DiffusersParams:
        if self.size_policy == "model" and None in (self.num_frames, self.height, self.width):
            raise Problem("size_policy 'model' needs num_frames, height and width in params")
        unknown = set(self.load_kwargs or {}) - set(_LOAD_KEYS)
        if unknown:
            raise Problem(f"unknown load_kwargs {sorted(unknown)}; allowed: {list(_LOAD_KEYS)}")
        for comp_name, spec in (self.components or {}).items():
            if "class" not in spec or "model" not in spec:
                raise Problem(f"components.{comp_name} needs 'class' and 'model'")
        if self.scheduler and "class" not in self.scheduler:
            raise Problem("scheduler needs 'class' (e.g. DDIMScheduler)")
        return self

    @property
    def offload(self) -> str:
        """none | model | sequential (true means model)."""
        if self.cpu_offload is True:
            return "model"
        return self.cpu_offload or "none"


class DiffusersAdapter(BaseAdapter):
    """A diffusers pipeline: built from `params` (a mapping or DiffusersParams), or given as `pipe=`."""

    def __init__(self, name: str, params: DiffusersParams | None = None, *, pipe: Any = None,
                 context: AdapterContext | None = None, **options: Any) -> None:
        super().__init__(name, context=context)
        if params is not None and options:
            raise TypeError("DiffusersAdapter takes params or keyword options, not both")
        p = self.params = params or DiffusersParams.parse(options, f"model {name!r}")
        requested = self.context.device if p.device == "auto" and self.context.device != "auto" else p.device
        self.device = resolve_device(requested)
        self.dtype = resolve_dtype(p.dtype, self.device)
        if pipe is None:
            if not p.model:
                raise ConfigError(f"model {name!r}: params.model (a Hub id or a local folder) is required")
            pipe = self._load(p.model, p.pipeline, p.components or {}, dict(p.load_kwargs or {}))
        self.pipe = pipe
        self._configure(p.scheduler, p.offload, p.attention_slicing, p.vae_tiling, p.vae_slicing)

        sig = inspect.signature(type(pipe).__call__).parameters
        self.call_params = {k for k, v in sig.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)}
        if "output_type" not in self.call_params:
            raise ConfigError(f"model {name!r}: {type(pipe).__name__} has no output_type argument; "
                              "it does not look like an image or video pipeline")
        supported = infer_tasks(self.call_params)
        chosen = tuple(p.tasks) if p.tasks else supported
        # t2v included: an image-to-video pipeline given no image fails (or makes one up) at call time.
        bad = [t for t in chosen if t not in supported]
        if bad:
            takes = "an image" if "image" in self.call_params else "a video" if "video" in self.call_params else "text only"
            raise ConfigError(f"model {name!r}: {type(pipe).__name__} cannot do tasks {bad}; it takes {takes}"
                              f" (tasks it supports: {', '.join(supported)})")
        self.size_multiple = int(p.size_multiple or infer_size_multiple(pipe))
        self.frame_step = int(p.frame_step or infer_frame_step(pipe))
        self.capabilities = Capabilities(
            tasks=chosen, max_frames=p.max_frames, max_height=p.max_height, max_width=p.max_width,
            batch_size=max(1, p.batch_size), deterministic=True,
        )

    # -- loading ---------------------------------------------------------------------------------
    def _load(self, model: str, pipeline: str | None, components: dict[str, dict[str, Any]],
              load_kwargs: dict[str, Any]) -> Any:
        import diffusers

        try:
            # Several pipelines (Wan among them) fail in from_pretrained without it, with messages
            # that read like a Hub or file problem; say what is missing before trying.
            import accelerate  # noqa: F401
        except ImportError:
            raise ConfigError(_no_accelerate(self.name, model)) from None
        cls = _diffusers_attr(pipeline, "pipeline") if pipeline else diffusers.DiffusionPipeline
        extra: dict[str, Any] = {}
        for comp_name, spec in components.items():
            # e.g. AnimateDiff's motion adapter, or a VAE kept in float32 while the rest is bf16.
            ccls = _diffusers_attr(spec["class"], f"components.{comp_name}.class")
            ckw = {k: spec[k] for k in ("subfolder", "revision", "variant") if k in spec}
            cdtype = resolve_dtype(spec.get("dtype", self.dtype), self.device)
            try:
                extra[comp_name] = ccls.from_pretrained(spec["model"], **{_dtype_key(): cdtype}, **ckw)
            except (OSError, ValueError) as e:
                raise ConfigError(f"model {self.name!r}: cannot load component {comp_name} from "
                                  f"{spec['model']!r}: {first_line(e)}") from e
        try:
            return cls.from_pretrained(model, **{_dtype_key(): self.dtype}, **load_kwargs, **extra)
        except Exception as e:
            if _mentions_accelerate(e):
                raise ConfigError(_no_accelerate(self.name, model)) from e
            error = self._load_error(model, e)
            if error is None:
                raise
            raise error from e

    def _load_error(self, model: str, e: Exception) -> ConfigError | None:
        if isinstance(e, ImportError):
            return ConfigError(f"model {self.name!r}: loading {model!r} needs a missing package ({e}); "
                               "install 'vdmbench[diffusers]' (diffusers, transformers, accelerate)")
        if isinstance(e, (OSError, ValueError)):
            hint = ("check the folder: it needs the model_index.json and component folders save_pretrained writes"
                    if _is_local(model) else
                    "make the Hub reachable / the files cached, or give a local folder; HF_HOME sets the cache")
            return ConfigError(f"model {self.name!r}: cannot load the diffusers pipeline {model!r}: {first_line(e)} ({hint})")
        return None

    def _configure(self, scheduler: dict[str, Any] | None, offload: str, attention_slicing: Any,
                   vae_tiling: bool, vae_slicing: bool) -> None:
        pipe = self.pipe
        if scheduler:
            scls = _diffusers_attr(scheduler["class"], "scheduler")
            pipe.scheduler = scls.from_config(pipe.scheduler.config, **dict(scheduler.get("config") or {}))
        for module in getattr(pipe, "components", {}).values():
            if isinstance(module, torch.nn.Module):
                module.eval()
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)  # the runner shows its own progress
        if attention_slicing:
            if not hasattr(pipe, "enable_attention_slicing"):
                raise ConfigError(f"model {self.name!r}: {type(pipe).__name__} has no attention slicing")
            pipe.enable_attention_slicing("auto" if attention_slicing is True else attention_slicing)
        vae = getattr(pipe, "vae", None)
        for wanted, method in ((vae_tiling, "enable_tiling"), (vae_slicing, "enable_slicing")):
            if wanted:
                if vae is None or not hasattr(vae, method):
                    raise ConfigError(f"model {self.name!r}: this pipeline's VAE does not support {method.replace('enable_', '')}")
                getattr(vae, method)()
        if offload != "none":
            if not self.device.startswith("cuda"):
                log.warning("model %s: cpu_offload=%s ignored on device %s", self.name, offload, self.device)
                pipe.to(self.device)
            elif offload == "model":
                pipe.enable_model_cpu_offload(device=self.device)
            else:
                pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)

    # -- requests --------------------------------------------------------------------------------
    def settings(self, req: GenerationRequest) -> CallSettings:
        """Frames/size/fps: the model's own under size_policy 'model', else the request's.
        Steps/guidance: the request's (the suite's protocol) where set, else the model's defaults."""
        p = self.params
        if p.size_policy == "model":
            frames, height, width = p.num_frames, p.height, p.width
            fps = p.fps or req.fps
        else:
            frames, height, width, fps = req.num_frames, req.height, req.width, req.fps
        steps = req.steps if req.steps is not None else p.steps
        guidance = req.guidance if req.guidance is not None else p.guidance
        return CallSettings(req.task, int(frames or 0), int(height or 0), int(width or 0), float(fps), steps, guidance)

    def check(self, req: GenerationRequest) -> None:
        super().check(req)
        s = self.settings(req)
        for what, value, limit in (("frames", s.num_frames, self.capabilities.max_frames),
                                   ("height", s.height, self.capabilities.max_height),
                                   ("width", s.width, self.capabilities.max_width)):
            if limit is not None and value > limit:
                raise AdapterError(f"{what}={value} exceeds the model's maximum {limit}")
        m = self.size_multiple
        if s.height % m or s.width % m:
            raise AdapterError(
                f"{s.width}x{s.height} is not a multiple of {m} in both sides, as "
                f"{type(self.pipe).__name__} needs (e.g. {s.width // m * m or m}x{s.height // m * m or m}); "
                "change the suite's size or set size_policy: model"
            )
        if (s.num_frames - 1) % self.frame_step:
            k = max(1, round((s.num_frames - 1) / self.frame_step))
            raise AdapterError(
                f"num_frames={s.num_frames} is not of the form k*{self.frame_step}+1 that "
                f"{type(self.pipe).__name__} needs (e.g. {k * self.frame_step + 1})"
            )
        if req.task in ("i2v", "editing") and (req.cond_frames is None or len(req.cond_frames) == 0):
            raise AdapterError(f"task {req.task} needs conditioning frames in the request")

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Video | Exception]:
        """Requests with equal call settings share pipeline calls of up to batch_size."""
        results: list[Video | Exception] = [AdapterError("no output")] * len(requests)
        groups: dict[CallSettings, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(self.settings(req), []).append(i)
        for s, idx in groups.items():
            # Images and videos are passed one request at a time: pipelines differ in how they
            # batch conditioning inputs, while text prompts batch the same way everywhere.
            size = self.capabilities.batch_size if s.task == "t2v" else 1
            for start in range(0, len(idx), size):
                part = idx[start:start + size]
                for i, out in zip(part, self._run_batch(s, [requests[i] for i in part])):
                    results[i] = out
        return results

    def _run_batch(self, s: CallSettings, reqs: list[GenerationRequest]) -> list[Video | Exception]:
        try:
            return self._call(s, reqs)
        except Exception as e:
            if len(reqs) == 1:
                return [e]
            # One bad request (or memory running out for the whole batch) should not fail the
            # others: retry each on its own.
            log.warning("model %s: batch of %d failed (%s); retrying one by one", self.name, len(reqs), e)
            return [self._run_batch(s, [r])[0] for r in reqs]

    def _call(self, s: CallSettings, reqs: list[GenerationRequest]) -> list[Video | Exception]:
        kwargs: dict[str, Any] = {"num_frames": s.num_frames, "height": s.height, "width": s.width,
                                  "generator": [torch.Generator(self.params.generator_device).manual_seed(r.seed) for r in reqs],
                                  "output_type": "np"}
        if "prompt" in self.call_params:
            kwargs["prompt"] = [r.prompt for r in reqs]
        if self.params.negative_prompt is not None and "negative_prompt" in self.call_params:
            kwargs["negative_prompt"] = [self.params.negative_prompt] * len(reqs)
        if s.steps is not None:
            kwargs["num_inference_steps"] = int(s.steps)
        if s.guidance is not None:
            scale = next((a for a in ("guidance_scale", "max_guidance_scale") if a in self.call_params), None)
            if scale:
                kwargs[scale] = float(s.guidance)
        # SVD and LTX condition on the frame rate.
        kwargs["fps"], kwargs["frame_rate"] = round(s.fps), s.fps
        cond = reqs[0].cond_frames
        if s.task == "i2v" and cond is not None:  # check() refused i2v/editing without frames
            kwargs["image"] = _pil(cond[0])
        elif s.task == "editing" and cond is not None:
            kwargs["video"] = [_pil(f) for f in cond]
            if reqs[0].strength is not None and "strength" in self.call_params:
                kwargs["strength"] = reqs[0].strength
        kwargs = {k: v for k, v in kwargs.items() if k in self.call_params}
        kwargs.update(self.params.call_kwargs or {})
        with torch.inference_mode():
            out = self.pipe(**kwargs)
        frames = getattr(out, "frames", None)
        if frames is None:
            frames = out[0] if isinstance(out, tuple) else getattr(out, "images", None)
        samples = split_batch(frames, len(reqs))
        videos: list[Video | Exception] = []
        for sample in samples:
            try:
                v = frames_to_video(sample, s.fps)
                if v.num_frames != s.num_frames:
                    raise AdapterError(f"the pipeline returned {v.num_frames} frames for "
                                       f"num_frames={s.num_frames}; set frame_step for this model")
                videos.append(v)
            except Exception as e:
                videos.append(e)
        return videos


def split_batch(frames: Any, n: int) -> list[Any]:
    """A pipeline's `frames` output -> one item per request (np/torch [B,F,...] or a list)."""
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        if frames.ndim == 5 and frames.shape[0] == n:
            return [frames[i] for i in range(n)]
        if frames.ndim == 4 and n == 1:
            return [frames]
    elif isinstance(frames, (list, tuple)):
        if len(frames) == n and not _is_frame(frames[0]):
            return list(frames)
        if n == 1 and frames and _is_frame(frames[0]):
            return [frames]
    shape = list(getattr(frames, "shape", [])) or (f"a list of {len(frames)}" if isinstance(frames, (list, tuple)) else type(frames).__name__)
    raise AdapterError(f"cannot split the pipeline's output ({shape}) into {n} videos")


def _is_frame(x: Any) -> bool:
    """One image (PIL, or a 3-D array), as opposed to one video."""
    return hasattr(x, "mode") or (hasattr(x, "ndim") and x.ndim == 3)


def frames_to_video(sample: Any, fps: float) -> Video:
    """One video in any layout a pipeline returns -> uint8 Video [T, H, W, 3]."""
    if isinstance(sample, (list, tuple)):
        sample = np.stack([np.asarray(f) for f in sample])
    x = sample if isinstance(sample, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(sample))
    if x.ndim == 4 and x.shape[-1] != 3 and x.shape[1] == 3:  # [F, C, H, W] ("pt" layouts)
        x = x.permute(0, 2, 3, 1)
    if torch.is_floating_point(x):
        x = x.float().cpu()
        if x.numel() and float(x.min()) < -1e-3:
            raise AdapterError(f"pipeline output has values below 0 (min {float(x.min()):.3g}); "
                               "expected floats in [0, 1] from output_type='np'")
    return to_video(x.cpu(), fps)


def _pil(frame: torch.Tensor) -> Any:
    from PIL import Image

    return Image.fromarray(frame.cpu().numpy().astype(np.uint8), "RGB")


ADAPTER = DiffusersAdapter
