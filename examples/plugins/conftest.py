"""synthloop's own suite runs the example plugins' tests too; they need the plugin installed
(scripts/bootstrap.sh installs it; this installs it when it is missing)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.*

from tests.plugin_support import ensure_ledger_installed  # noqa: E402

ensure_ledger_installed()
