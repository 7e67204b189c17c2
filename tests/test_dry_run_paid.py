"""`--dry-run` counts paid API calls from the adapter type and its config, not from the adapter's
name `http` being written in the YAML (issue #15 item 3)."""

import pytest


def model_file(tmp_path, name, adapter, params):
    folder = tmp_path / "cfg" / "adapters"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(f"name: {name}\nadapter: {adapter}\nparams: {params}\n")
    return f"hydra.searchpath=[file://{tmp_path / 'cfg'}]"


API = ("{base_url: 'https://api.example.com', submit: {path: /v1, job_id: id}, "
       "poll: {path: '/v1/{job_id}', status: s, done: [ok], video_url: u}")


@pytest.mark.parametrize("name, adapter, params, paid", [
    ("api", "http", API + "}", True),
    ("free-api", "http", API + ", paid: false}", False),
    ("plugin-api", "vdmbench.adapters.http:HttpAdapter", API + "}", True),  # named by path, not 'http'
    ("local", "callable", "{target: 'tests.fixtures.generators:noise'}", False),
])
def test_dry_run_says_paid_calls_when_the_adapter_is_paid(vdmbench_cli, tmp_path, name, adapter, params, paid):
    search = model_file(tmp_path, name, adapter, params)
    p = vdmbench_cli("run", "suite=tiny", f"model={name}", search, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert ("paid API calls: 12" in p.stdout) is paid, p.stdout
