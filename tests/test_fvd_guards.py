"""Set metrics' guards: an extractor running out of memory is a one-line error naming the options
to change; VideoMAE-v2 FVD off cd-fvd's 16 frames is labelled not comparable."""

from __future__ import annotations

import warnings

import pytest
import torch

from vdmbench.core.errors import ConfigError
from vdmbench.features.memory import is_out_of_memory
from vdmbench.gate.compare import metric_config
from vdmbench.metrics import MetricContext
from vdmbench.metrics.fvd import FVD, KVD
from vdmbench.metrics.jedi import JEDi


def clips(n: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, t, 8, 8, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def raising(error: BaseException):
    def forward(v):
        raise error
    return forward


CUDA_OOM = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.15 GiB\nof which ..."
CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
           "you tried to allocate 123456789 bytes.")


@pytest.mark.parametrize("error", [torch.OutOfMemoryError(CUDA_OOM), RuntimeError(CUDA_OOM), RuntimeError(CPU_OOM),
                                   MemoryError(), RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)")])
def test_out_of_memory_is_one_line_naming_backend_batch_size_and_precision(error):
    assert is_out_of_memory(error)
    m = FVD(MetricContext(batch_size=8), features="random-i3d", resize=32)
    m.extractor.forward = raising(error)
    with pytest.raises(ConfigError) as info:
        m.update(clips(2, 9))
    text = str(info.value)
    assert "\n" not in text and text.startswith("random-i3d features: out of memory on cpu at batch_size 8, precision fp32")
    assert "batch_size=4" in text and "fp16 or bf16" in text and type(error).__name__ in text
    assert info.value.__cause__ is error


def test_at_batch_size_one_in_half_precision_only_a_bigger_device_is_left():
    m = JEDi(MetricContext(batch_size=1, precision="fp16"), features="random-vjepa")
    m.extractor.forward = raising(torch.OutOfMemoryError(CUDA_OOM))
    with pytest.raises(ConfigError, match=r"^random-vjepa features: out of memory .* batch_size 1, precision fp16: "
                                          r"use a device with more memory \(OutOfMemoryError"):
        m.update(clips(1, 4))


def test_the_reference_set_extraction_is_guarded_too():
    def reference():
        yield clips(3, 9, seed=1)

    m = KVD(MetricContext(reference=reference, reference_id="r"), features="random-i3d", resize=32, n_boot=0)
    m.extractor.forward = lambda v: v.reshape(len(v), -1)[:, :400].float()
    m.update(clips(3, 9))
    m.extractor.forward = raising(RuntimeError(CPU_OOM))
    with pytest.raises(ConfigError, match="random-i3d features: out of memory"):
        m.compute()


def test_other_errors_pass_through_unchanged():
    err = RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
    assert not is_out_of_memory(err) and not is_out_of_memory(ValueError("out of range"))
    m = FVD(features="random-i3d", resize=32)
    m.extractor.forward = raising(err)
    with pytest.raises(RuntimeError) as info:
        m.update(clips(2, 9))
    assert info.value is err


# --- VideoMAE-v2 off 16 frames ----------------------------------------------------------------------

def videomae_fvd(**opts) -> FVD:
    m = FVD(features="random-videomae-v2", covariance="stylegan-v", n_boot=0, **opts)
    m.extractor.forward = lambda v: v.reshape(len(v), -1)[:, :m.extractor.dim].float()  # no network: bookkeeping
    m.info["comparable"] = True  # as with the published checkpoint in fp32
    return m


def run(m: FVD, t: int):
    m.update_real(clips(4, t, seed=1))
    m.update(clips(4, t, seed=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.compute()
    return m.describe(), [str(w.message) for w in caught]


def test_videomae_at_16_frames_stays_comparable():
    m = videomae_fvd()
    d, caught = run(m, 16)
    assert m.comparable is True and d["comparable"] is True and "frames_warning" not in d
    assert not any("frames" in w for w in caught)


@pytest.mark.parametrize("t, repeat", [(8, 1), (24, 1), (4, 2)])
def test_videomae_off_16_frames_is_not_comparable_and_says_why(t, repeat):
    m = videomae_fvd(repeat_frames=repeat)
    d, caught = run(m, t)
    frames = t * repeat
    assert m.comparable is False and d["comparable"] is False and d["frames"] == [frames]
    assert f"on {frames}-frame clips" in d["frames_warning"] and "16 frames" in d["frames_warning"]
    assert d["frames_warning"] in caught  # also a Python warning at compute()
    # A protocol difference for the gate (not a volatile detail): 8-frame and 16-frame runs differ.
    assert metric_config(d) != metric_config(run(videomae_fvd(), 16)[0])
    m.reset()
    assert m.frames_seen == set() and m.frames_warning() is None


def test_i3d_has_no_frame_protocol_here():
    m = FVD(features="random-i3d", resize=32, n_boot=0)
    m.extractor.forward = lambda v: v.reshape(len(v), -1)[:, :400].float()
    d, _ = run(m, 12)
    assert "frames_warning" not in d and m.off_protocol_frames() == []


# --- what each backend is (for `vdmbench list metrics` and the README) -------------------------------

def test_every_backend_is_described_with_weights_protocol_and_comparability():
    from vdmbench.features.videomae import BACKENDS as VIDEOMAE
    from vdmbench.features.vjepa import BACKENDS as VJEPA
    from vdmbench.metrics.fvd import FEATURE_BACKENDS as FVD_NOTES
    from vdmbench.metrics.jedi import FEATURE_BACKENDS as JEDI_NOTES

    assert set(FVD_NOTES) == {"i3d", "i3d-torchscript", "random-i3d", *VIDEOMAE}
    assert set(JEDI_NOTES) == set(VJEPA) and FVD.feature_backends is KVD.feature_backends is FVD_NOTES
    assert JEDi.feature_backends is JEDI_NOTES
    for notes in (FVD_NOTES, JEDI_NOTES):
        for name, text in notes.items():
            if name.startswith("random-"):
                assert text.endswith("not comparable with published numbers"), name
            else:
                assert "comparable with" in text and (".pt" in text or ".pth" in text), name
    for cls in (FVD, KVD, JEDi):  # `vdmbench list metrics` shows the docstring's first line: a whole sentence
        first = cls.__doc__.strip().splitlines()[0]
        assert first.endswith(".") and len(first) < 110, first
