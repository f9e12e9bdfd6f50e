"""`python -m cdc_tui`: the same entry point as the `cdc-tui` script (used to launch runners)."""

from __future__ import annotations

import sys

from cdc_tui.startup import main

sys.exit(main())
