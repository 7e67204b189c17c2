"""Print the README's quick-start commands, one per line, so CI runs exactly what a user reads.

The commands are the non-comment lines of the first ```bash block under '## Quick start'.
Exits non-zero unless there are exactly two (install + benchmark, install + tests).
"""

import re
import sys
from pathlib import Path

text = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md").read_text(encoding="utf-8")
section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
block = re.search(r"```bash\n(.*?)```", section.group(1), re.S) if section else None
if block is None:
    sys.exit("README.md: no ```bash block under '## Quick start'")
commands = [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
if len(commands) != 2:
    sys.exit(f"README.md: the quick start must have exactly two commands, found {len(commands)}: {commands}")
print("\n".join(commands))
