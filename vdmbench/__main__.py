"""`python -m vdmbench ...` (and `torchrun ... -m vdmbench score ...`) = the `vdmbench` command."""

from vdmbench.cli import main

raise SystemExit(main())
