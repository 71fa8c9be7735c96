"""The editable document: a GraphSpec plus layout, its undo commands and its file I/O.

QtCore/QtGui only (no widgets), so everything here is testable without a window.
"""

from designer.document.graph_document import GraphDocument

__all__ = ["GraphDocument"]
