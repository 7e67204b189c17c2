"""Issue #14: bad input, closed pipes and no network give one line `vdmbench: error: ...` (exit 2,
no traceback), or a quiet exit, never a traceback or a minute of retries."""

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.fixtures import REPO


def one_error_line(result, *parts):
    """The run failed with exit 2 and exactly one stderr line, `vdmbench: error: ...` with `parts`."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("vdmbench: error: "), result.stderr[-3000:]
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def own_configs(tmp_path, suites=None, adapters=None):
    """A search-path folder DIR with DIR/suites/*.yaml and DIR/adapters/*.yaml; returns the
    `hydra.searchpath=[file://DIR]` argument."""
    root = tmp_path / "cfg"
    for group, files in (("suites", suites or {}), ("adapters", adapters or {})):
        (root / group).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / group / f"{name}.yaml").write_text(text)
    return f"hydra.searchpath=[file://{root}]"


GOOD_SUITE = """name: mine
num_frames: 6
height: 16
width: 16
seeds: [0]
metrics: [flicker]
prompts:
  - {id: a, text: "a red circle moving right"}
"""


# --- 1. YAML syntax errors name the file and the line ---------------------------------------------

def test_yaml_syntax_error_in_a_suite_names_file_and_line(vdmbench_cli, tmp_path):
    search = own_configs(tmp_path, suites={"broken": "name: broken\nnum_frames: 8\nprompts: [\n"})
    p = vdmbench_cli("run", "suite=broken", "model=toy-noise", search)
    one_error_line(p, f"{tmp_path / 'cfg' / 'suites' / 'broken.yaml'}: not valid YAML at line 4, column 1")


def test_yaml_syntax_error_in_a_model_names_file_and_line(vdmbench_cli, tmp_path):
    search = own_configs(tmp_path, adapters={
        "broken-model": "name: broken-model\nadapter: callable\nparams:\n  target: 'unclosed\n  steps: 3\n"})
    p = vdmbench_cli("run", "suite=tiny", "model=broken-model", search)
    line = one_error_line(p, f"{tmp_path / 'cfg' / 'adapters' / 'broken-model.yaml'}: not valid YAML at line ")
    assert "line 4," in line or "line 6," in line  # where the scalar starts or where the file ends


def test_hydra_override_error_is_one_line(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "suite.bogus=1")
    one_error_line(p, "suite.bogus", "+suite.bogus=1")


def test_unknown_hydra_group_option_is_one_line(vdmbench_cli):
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", "hydra/launcher=no-such-launcher")
    one_error_line(p, "no-such-launcher")


# --- 2. malformed content (valid YAML) names the file ---------------------------------------------

def test_malformed_suite_content_names_the_file(vdmbench_cli, tmp_path):
    search = own_configs(tmp_path, suites={"bad": GOOD_SUITE.replace("num_frames: 6", "num_frames: 0")})
    p = vdmbench_cli("run", "suite=bad", "model=toy-noise", search)
    one_error_line(p, str(tmp_path / "cfg" / "suites" / "bad.yaml"), "'num_frames' must be an integer >= 1")


def test_malformed_model_content_names_the_file(vdmbench_cli, tmp_path):
    search = own_configs(tmp_path, adapters={"odd": "name: odd\nadapter: callable\nsteps: 3\n"})
    p = vdmbench_cli("run", "suite=tiny", "model=odd", search)
    one_error_line(p, str(tmp_path / "cfg" / "adapters" / "odd.yaml"), "unknown keys ['steps']")


def test_a_file_that_is_valid_after_composition_is_not_refused_early(vdmbench_cli, tmp_path):
    # num_frames comes from the command line; fps from an interpolation Hydra resolves.
    text = GOOD_SUITE.replace("num_frames: 6\n", "").replace("seeds:", "fps: ${suite.height}\nseeds:")
    search = own_configs(tmp_path, suites={"partial": text})
    p = vdmbench_cli("run", "suite=partial", "model=toy-noise", "+suite.num_frames=6", search)
    assert p.returncode == 0, p.stderr[-3000:]


# --- 3. a results_dir that cannot be written ------------------------------------------------------

def test_results_dir_that_cannot_be_created(vdmbench_cli, tmp_path):
    (tmp_path / "afile").write_text("a file, not a folder")  # fails for root too, unlike chmod
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", f"results_dir={tmp_path / 'afile' / 'sub'}")
    one_error_line(p, f"results_dir {tmp_path / 'afile' / 'sub'} is not writable", "results_dir=DIR")


def test_results_dir_that_refuses_writes(vdmbench_cli, tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise", f"results_dir={tmp_path / 'ro'}")
    one_error_line(p, "is not writable (Permission denied)", "choose another with results_dir=DIR")


# --- 4. list suites|models with the user's folders ------------------------------------------------

@pytest.mark.parametrize("spelling", ["hydra", "flag"])
def test_list_includes_the_users_configs(vdmbench_cli, tmp_path, spelling):
    search = own_configs(tmp_path, suites={"mine": GOOD_SUITE},
                         adapters={"my-model": "name: my-model\nadapter: callable\nparams: {target: x:y}\n"})
    where = [search] if spelling == "hydra" else ["--searchpath", str(tmp_path / "cfg")]
    suites = vdmbench_cli("list", "suites", *where, check=True).stdout
    assert "mine" in suites and "smoke" in suites and "shipped" in suites  # the "from" column
    models = vdmbench_cli("list", "models", *where, check=True).stdout
    assert "my-model" in models and "reference-unet3d" in models


def test_list_with_a_missing_folder_is_one_line(vdmbench_cli, tmp_path):
    one_error_line(vdmbench_cli("list", "suites", "--searchpath", str(tmp_path / "nope")), "is not a folder")


# --- 5. vbench export as the README writes it -----------------------------------------------------

def test_vbench_export_without_out_writes_under_results(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", "preview=false", check=True)
    import duckdb

    con = duckdb.connect(str(tmp_path / "results" / "vdmbench.duckdb"), read_only=True)
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    p = vdmbench_cli("vbench", "export", run_id[:10], check=True)
    out = tmp_path / "results" / "vbench" / run_id
    assert f"to {out.relative_to(tmp_path)}" in p.stdout or f"to {out}" in p.stdout, p.stdout
    assert len(list(out.glob("*.mp4"))) == 12 and (out / "vdmbench_manifest.csv").is_file()


# --- 6. a closed output pipe ----------------------------------------------------------------------

def test_broken_pipe_exits_quietly_in_process(vdmbench_cli, monkeypatch):
    from vdmbench.cli import commands as cli

    def list_into_a_closed_pipe(args):
        print("a line nobody reads")
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_list", list_into_a_closed_pipe)
    p = vdmbench_cli("list", "runs")
    assert p.returncode == cli.EXIT_BROKEN_PIPE == 141 and p.stderr == ""


def test_broken_pipe_exits_quietly_in_a_real_pipe(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`head -1`) is gone before vdmbench writes anything
    try:
        p = subprocess.run([sys.executable, "-m", "vdmbench", "list", "metrics"], cwd=tmp_path, stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write_end)
    assert p.returncode == 141 and "Traceback" not in p.stderr and p.stderr.strip() == "", p.stderr


# --- 7. feature weights offline: the clear error within seconds -----------------------------------

@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every TCP connect fails at once and no name is resolved; records the timeouts asked for."""
    timeouts = []

    def connect(self, address):
        timeouts.append(self.gettimeout())
        raise TimeoutError("timed out (test: no network)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port))])
    for var in ("VDMBENCH_WEIGHTS", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return timeouts


def test_clip_weights_offline_fail_fast_with_the_clear_error(no_network):
    from vdmbench.core.errors import WeightsError
    from vdmbench.metrics import MetricContext, build_metric

    start = time.monotonic()
    with pytest.raises(WeightsError) as e:
        build_metric("clip_similarity", MetricContext())
    assert time.monotonic() - start < 5
    msg = str(e.value)
    assert "no network" in msg and "$VDMBENCH_WEIGHTS" in msg and "open_clip_ViT-B-32_openai.safetensors" in msg
    assert "https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/" in msg


def test_clip_weights_from_open_clips_cache_need_no_network(no_network, tmp_path, monkeypatch):
    import open_clip

    from vdmbench.metrics import clip

    repo = tmp_path / "xdg" / "vdmbench" / "open_clip" / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    cached = repo / "snapshots" / "abc123" / "open_clip_model.safetensors"
    cached.write_bytes(b"weights")
    calls = []
    monkeypatch.setattr(open_clip, "create_model", lambda *a, **k: calls.append((a, k)) or "model")
    cfg = open_clip.get_pretrained_cfg("ViT-B-32", "openai")
    assert clip._open_clip_download("ViT-B-32", "openai", cfg, True) == "model"
    assert calls[0][1]["pretrained"] == str(cached) and no_network == []


def test_i3d_download_offline_fails_fast(no_network, tmp_path):
    from vdmbench.core.errors import WeightsError
    from vdmbench.features.weights import REGISTRY, resolve

    start = time.monotonic()
    with pytest.raises(WeightsError) as e:
        resolve(REGISTRY["i3d-torchscript"], cache_dir=tmp_path / "cache", env={})
    assert time.monotonic() - start < 5
    assert no_network and max(no_network) <= 5  # not urllib's 30 s connect timeout
    msg = str(e.value)
    assert "no network" in msg and "i3d_torchscript.pt" in msg and "$VDMBENCH_WEIGHTS" in msg
    assert REGISTRY["i3d-torchscript"].url in msg


def test_network_probe_goes_to_the_proxy_where_one_is_set(monkeypatch):
    from vdmbench.features.weights import _connect_target

    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert _connect_target("https://huggingface.co/x") == ("proxy.example", 3128)
    monkeypatch.setenv("no_proxy", "huggingface.co")
    assert _connect_target("https://huggingface.co/x") == ("huggingface.co", 443)


def test_a_failed_multirun_job_keeps_its_own_message_and_exit_1(vdmbench_cli):
    # The job's error travels through Hydra as an exception; it is passed on, not re-labelled.
    p = vdmbench_cli("run", "-m", "suite=tiny", "model=toy-broken")
    errors = [line for line in p.stderr.splitlines() if line.startswith("vdmbench: error: ")]
    assert p.returncode == 1 and len(errors) == 1, p.stderr[-3000:]
    assert "no sample succeeded" in errors[0] and "vdmbench: error: vdmbench" not in errors[0]
