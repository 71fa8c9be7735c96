"""Error types of the engine. Every message is a sentence a learner can act on."""

from __future__ import annotations

from dataclasses import dataclass


class GradscapeError(Exception):
    """Base class of every error the engine raises on purpose."""


class FileFormatError(GradscapeError):
    """A graph or model file could not be read (malformed, newer version, hostile)."""


class DataError(GradscapeError):
    """A dataset or CSV file could not be used; the message names the line and column."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found by the compiler, attached to a node and/or an edge.

    Attributes:
        message: a sentence that says what is wrong and what to do.
        node: id of the offending node, if any.
        edge: the offending edge as "src.port->dst.port", if any.
    """

    message: str
    node: str | None = None
    edge: str | None = None

    def __str__(self) -> str:
        return self.message


class CompileError(GradscapeError):
    """The graph cannot be compiled; carries every diagnostic found at once."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class TrainingDiverged(GradscapeError):
    """The loss or a gradient became NaN or infinite; the last good weights were kept."""

    def __init__(self, message: str, node: str | None = None):
        self.node = node
        super().__init__(message)


class MemoryLimitError(GradscapeError):
    """A batch would need more memory than the computer has; refused before allocating."""


class ShapeError(GradscapeError):
    """Raised by an op's shape inference; the compiler turns it into a Diagnostic."""
