"""synthloop's own suite runs the example plugins' tests too; they need the plugin installed
(scripts/bootstrap.sh installs it; this installs it when it is missing)."""

from tests.plugin_support import ensure_ledger_installed

ensure_ledger_installed()
