"""Every exception synthloop raises on purpose lives here.

Messages follow one rule: say what is wrong and how to fix it, in one line. The CLI prints
``str(error)`` and nothing else for these, so no traceback reaches the user.
"""

from __future__ import annotations


class SynthloopError(Exception):
    """Base class: an error whose message is fit to show a user as it is."""


class SpecError(SynthloopError):
    """The loop spec is invalid (unknown key, bad value, rule that does not parse)."""


class DataError(SynthloopError):
    """The data cannot be used as the spec says (missing file, column, class)."""


class RuleError(SpecError):
    """A rule expression does not parse or names unknown columns."""


class LLMError(SynthloopError):
    """The LLM could not be reached or configured."""


class LLMOutputError(LLMError):
    """The LLM replied, but the reply does not fit the expected structure."""

    def __init__(self, message: str, raw: str = "", expected_fields: list[str] | None = None):
        self.raw = raw
        self.expected_fields = list(expected_fields or [])
        shown = raw if len(raw) <= 300 else raw[:300] + "…"
        super().__init__(
            f"{message}. Expected a JSON object with fields {self.expected_fields}; "
            f"the reply was: {shown!r}"
        )


class BudgetExceeded(SynthloopError):
    """A hard budget (tokens, wall clock) was spent mid-node."""


class RunStoreError(SynthloopError):
    """A run folder is missing, unreadable or belongs to another run."""


class HoldoutAccessError(SynthloopError, PermissionError):
    """Something other than the final report asked for the holdout."""


class PluginError(SynthloopError):
    """A plugin failed to load or registered something invalid."""


class ConformanceError(PluginError):
    """A component fails a check of the conformance kit (``synthloop.testing``)."""


class ReviewError(SynthloopError):
    """A review decision cannot be applied (no batch waiting, an edit that breaks the rules)."""


class ReviewPending(SynthloopError):
    """The run paused before accepting a batch: a person reviews it with ``synthloop review``.

    Not a failure: ``synthloop run`` prints the message and exits 0."""

    def __init__(self, run_id: str, pending: dict, runs_dir: str | None = None):
        import shlex

        from synthloop.store import review_command  # store imports this module

        self.run_id = run_id
        self.pending = pending
        see = (review_command(run_id, runs_dir) if runs_dir is not None
               else f"synthloop review {shlex.quote(run_id)}")
        super().__init__(
            f"Run '{run_id}' paused: iteration {pending.get('iteration')}'s batch of "
            f"{pending.get('rows')} row(s) waits for review; see it with '{see}', then add "
            f"--approve, --reject or --edit FILE."
        )
