"""`python -m vdmbench ...` (and `torchrun ... -m vdmbench score ...`) = the `vdmbench` command."""

from vdmbench.cli.commands import main

raise SystemExit(main())
