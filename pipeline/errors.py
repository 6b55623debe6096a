"""One error family for everything a user can see.

Every message names the stage, what was expected, what was found and what to do.
The command line prints ``user_message()``; the app shows it in ``st.error``.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: a problem the user can act on."""

    stage: str = "pipeline"

    def __init__(self, message: str, *, hint: str = "", stage: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if stage is not None:
            self.stage = stage

    def user_message(self) -> str:
        """The text shown to a person: ``stage: message. hint``."""
        text = f"{self.stage}: {self.message}"
        if self.hint:
            text += f"\nWhat to do: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.user_message()


class InputError(PipelineError):
    """The input table or file cannot be used (nothing was computed)."""

    stage = "input"


class ConfigError(PipelineError):
    """A setting is out of range or unknown (nothing was computed)."""

    stage = "config"


class StageError(PipelineError):
    """A stage failed while running; earlier stages stay cached."""

    def __init__(self, stage: str, message: str, *, hint: str = ""):
        super().__init__(message, hint=hint, stage=stage)


class Cancelled(PipelineError):
    """The consumer stopped reading events; the run was abandoned cleanly."""

    def __init__(self, stage: str):
        super().__init__("run cancelled", stage=stage)
