"""A database written by a newer vdmbench: `run` refuses it, `show` and `list` read it and say so
on stderr (issue #15 item 5)."""

import duckdb


def test_show_and_list_warn_on_a_newer_schema_and_run_refuses(vdmbench_cli, tmp_path):
    vdmbench_cli("run", "suite=tiny", "model=toy-noise", check=True)
    db = tmp_path / "results" / "vdmbench.duckdb"
    con = duckdb.connect(str(db))
    con.execute("UPDATE schema_version SET version = 99")
    con.close()
    for args in (["show"], ["list", "runs"]):
        p = vdmbench_cli(*args)
        assert p.returncode == 0 and "toy-noise" in p.stdout
        assert "warning:" in p.stderr and "newer vdmbench (schema 99" in p.stderr, p.stderr
    p = vdmbench_cli("run", "suite=tiny", "model=toy-noise")
    assert p.returncode == 2 and "newer vdmbench" in p.stderr
