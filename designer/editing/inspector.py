"""The inspector: a param form generated from the selected node's op schema.

Every edit goes through ``controller.set_param`` (or ``rename``); a refused value is shown
under its field and the widget returns to the document's value. The form follows the
document: undo, redo and edits elsewhere update the widgets in place.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.editing.graph_stats import node_parameter_count, parameter_count
from designer.editing.param_widgets import param_editor
from engine.core import registry
from engine.ops.base import Param, fmt_shape

BIG = 1_000_000_000


def format_list(value: Any) -> str:
    """Text of a shape/floats value for a line edit: ``[2, 3]`` -> ``"2, 3"``."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_list(text: str, kind: str) -> Any:
    """Parse a line edit's text for a "shape" or "floats" param.

    Returns the value to hand to ``set_param`` (the schema check gives the message if it
    is not acceptable); text that is not numbers at all is returned as is.
    """
    parts = [p for p in text.replace("[", "").replace("]", "").replace(",", " ").split()]
    try:
        if kind == "shape":
            return [int(p) for p in parts]
        values = [float(p) for p in parts]
    except ValueError:
        return text
    if len(values) == 1 and "," not in text and "[" not in text:
        return values[0]
    return values


class Inspector(QWidget):
    """Dock contents: header, id, description, formula, params, shape, diagnostics."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self.formula_label: QLabel | None = None
        self.errors: dict[str, QLabel] = {}
        self._selection: list[str] = []
        self._graph_count: tuple[int, int] | None = None  # (revision, parameters)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll)
        self._body = QWidget()
        scroll.setWidget(self._body)
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(10, 10, 10, 10)
        self._layout.setSpacing(8)
        self._content: QWidget | None = None
        self.message = QLabel(self)  # the last refusal (each field shows its own), for tests
        self.message.hide()
        self.document.changed.connect(self._on_changed)
        self.document.node_renamed.connect(self._on_renamed)
        self.document.reset.connect(lambda: self.show_nodes([]))
        self.show_nodes([])

    # -- what to show ---------------------------------------------------------------------
    def show_nodes(self, node_ids: list[str]) -> None:
        """Show the form of the one selected node, or a summary for none / several."""
        self._selection = list(node_ids)
        self.node_id = node_ids[0] if len(node_ids) == 1 else None
        self._rebuild()

    def _clear(self) -> None:
        if self._content is not None:
            self._content.hide()
            self._content.deleteLater()
        self._content = QWidget()
        self._layout.addWidget(self._content)
        self.editors.clear()
        self.errors.clear()
        self.formula_label = None

    def _rebuild(self) -> None:
        self._clear()
        box = QVBoxLayout(self._content)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(8)
        if self.node_id is None or not self.document.has_node(self.node_id):
            self.node_id = None
            self._summary(box)
        else:
            self._node_form(box)
        box.addStretch(1)
        self._content.show()  # addWidget would only show it on the next event loop pass

    def _summary(self, box: QVBoxLayout) -> None:
        doc = self.document
        analysis = doc.analysis()
        title = QLabel("Graph" if len(self._selection) < 2 else
                       f"{len(self._selection)} nodes selected")
        title.setFont(theme.ui_font(11, bold=True))
        box.addWidget(title)
        nodes = doc.nodes()
        if len(self._selection) >= 2:
            chosen = [n for n in nodes if n.id in set(self._selection)]
            count = parameter_count(chosen, analysis)
            text = f"{count:,} parameters in the selection."
        else:
            if self._graph_count is None or self._graph_count[0] != doc.revision:
                # once per revision: a new file shows this summary twice (reset, selection)
                self._graph_count = (doc.revision, parameter_count(nodes, analysis))
            count = self._graph_count[1]
            text = (f"{len(nodes)} nodes · {len(doc.edges())} wires · {count:,} parameters"
                    if nodes else "The canvas is empty.")
        info = QLabel(text)
        info.setWordWrap(True)
        box.addWidget(info)
        hint = QLabel("Select a node to edit its parameters. Drag ops from the palette, or "
                      "press Tab on the canvas to add one.")
        hint.setWordWrap(True)
        hint.setStyleSheet(f"color: {theme.current().muted_text};")
        box.addWidget(hint)

    def _node_form(self, box: QVBoxLayout) -> None:
        node = self.document.node(self.node_id)
        op = registry.get(node.op)
        pal = theme.current()

        chip = theme.category_color(op.category if op else "").name()
        category = op.category if op else "unknown op"
        head = QLabel(f"<span style='color:{chip}'>■</span> <b>{node.op}</b> "
                      f"<span style='color:{pal.muted_text}'>· {category}</span>")
        head.setFont(theme.ui_font(11))
        box.addWidget(head)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.id_edit = QLineEdit(node.id)
        self.id_edit.setToolTip("The node's name; wires and files refer to it.")
        self.id_edit.editingFinished.connect(self._rename)
        form.addRow("Name", self.id_edit)
        self.errors["__id__"] = self._error_label()
        form.addRow("", self.errors["__id__"])
        box.addLayout(form)

        # The parameters come first, so a layer's units show without scrolling in the
        # default dock size; what the op computes follows.
        if op is not None:
            if op.params:
                box.addWidget(self._section("Parameters"))
                pform = QFormLayout()
                pform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
                pform.setLabelAlignment(Qt.AlignmentFlag.AlignRight
                                        | Qt.AlignmentFlag.AlignVCenter)
                values = op.resolve_params(node.params)
                for param in op.params:
                    editor = self._editor(param, values.get(param.name, param.default))
                    editor.setToolTip(param.help)
                    self.editors[param.name] = editor
                    label = QLabel(param.name)
                    label.setToolTip(param.help)
                    pform.addRow(label, editor)
                    if param.help:
                        help_label = QLabel(param.help)
                        help_label.setWordWrap(True)
                        help_label.setStyleSheet(f"color: {pal.muted_text}; font-size: 8pt;")
                        pform.addRow("", help_label)
                    self.errors[param.name] = self._error_label()
                    pform.addRow("", self.errors[param.name])
                box.addLayout(pform)

            box.addWidget(self._section("What it computes"))
            desc = QLabel(op.description)
            desc.setWordWrap(True)
            box.addWidget(desc)
            if op.formula:
                formula = QLabel(op.formula_for(op.resolve_params(node.params)))
                self.formula_label = formula
                formula.setFont(theme.mono_font(8.5))
                formula.setWordWrap(True)
                formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                formula.setStyleSheet(
                    f"background: {pal.label_background}; border: 1px solid {pal.node_border};"
                    " border-radius: 4px; padding: 6px;")
                box.addWidget(formula)

        box.addWidget(self._section("Output"))
        self.shape_label = QLabel()
        self.shape_label.setFont(theme.mono_font(9))
        box.addWidget(self.shape_label)
        self.params_label = QLabel()
        box.addWidget(self.params_label)
        self.diag_label = QLabel()
        self.diag_label.setWordWrap(True)
        self.diag_label.setTextFormat(Qt.TextFormat.RichText)
        box.addWidget(self.diag_label)
        self._update_analysis()

    @staticmethod
    def _section(text: str) -> QLabel:
        label = QLabel(text.upper())
        label.setFont(theme.ui_font(8, bold=True))
        label.setStyleSheet(f"color: {theme.current().muted_text}; padding-top: 6px;")
        return label

    @staticmethod
    def _error_label() -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {theme.current().error};")
        label.hide()
        return label

    # -- editors --------------------------------------------------------------------------
    def _editor(self, param: Param, value: Any) -> QWidget:
        name = param.name
        if param.kind in ("shape", "floats"):  # lists: typed as text, parsed on Enter
            w = QLineEdit(format_list(value))
            w.setPlaceholderText("e.g. 2, 3" if param.kind == "shape" else "e.g. 0.5 or 1, 2")
            w.editingFinished.connect(
                lambda n=name, e=w, k=param.kind: self.commit(n, parse_list(e.text(), k)))
            return w
        return param_editor(param, value, lambda v, n=name: self.commit(n, v),
                            lambda reason, n=name: self._show_error(n, reason))

    def commit(self, name: str, value: Any) -> str | None:
        """Send one param edit to the controller; show the reason if it is refused."""
        if self.node_id is None:
            return "No node is selected."
        reason = self.controller.set_param(self.node_id, name, value)
        self._show_error(name, reason)
        if reason:
            self._load_values()  # back to the document's value
        return reason

    def _show_error(self, key: str, reason: str | None) -> None:
        self.message.setText(reason or "")
        label = self.errors.get(key)
        if label is not None:
            label.setText(reason or "")
            label.setVisible(bool(reason))

    def _rename(self) -> None:
        if self.node_id is None:
            return
        new = self.id_edit.text().strip()
        if new == self.node_id:
            self._show_error("__id__", None)
            return
        reason = self.controller.rename(self.node_id, new)
        self._show_error("__id__", reason)
        if reason:
            self.id_edit.setText(self.node_id)

    # -- following the document -----------------------------------------------------------
    def _on_renamed(self, old: str, new: str) -> None:
        self._selection = [new if i == old else i for i in self._selection]
        if self.node_id == old:
            self.node_id = new
            self.id_edit.setText(new)

    def _on_changed(self) -> None:
        if self.node_id is not None and not self.document.has_node(self.node_id):
            self.show_nodes([])
            return
        if self.node_id is None:
            self._rebuild()
            return
        self._load_values()
        self._update_analysis()

    def _load_values(self) -> None:
        if self.node_id is None:
            return
        node = self.document.node(self.node_id)
        op = registry.get(node.op)
        if op is None:
            return
        values = op.resolve_params(node.params)
        if self.formula_label is not None:  # a loss's formula follows its reduction
            self.formula_label.setText(op.formula_for(values))
        for name, w in self.editors.items():
            value = values.get(name)
            w.blockSignals(True)
            try:
                if isinstance(w, QSpinBox | QDoubleSpinBox):
                    w.setValue(value)
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
                elif isinstance(w, QComboBox):
                    w.setCurrentText(str(value))
                elif isinstance(w, QLineEdit):
                    w.setText(format_list(value))
            except (TypeError, ValueError):
                pass
            finally:
                w.blockSignals(False)
        if self.id_edit.text() != self.node_id and not self.id_edit.hasFocus():
            self.id_edit.setText(self.node_id)

    def _update_analysis(self) -> None:
        analysis = self.document.analysis()
        node = self.document.node(self.node_id)
        shape = analysis.shapes.get(self.node_id)
        self.shape_label.setText(fmt_shape(shape) if shape is not None else "shape unknown")
        count = node_parameter_count(node, analysis)
        self.params_label.setText(f"{count:,} learnable parameters" if count else "")
        self.params_label.setVisible(bool(count))
        problems = [d.message for d in analysis.diagnostics if d.node == self.node_id]
        pal = theme.current()
        self.diag_label.setText("".join(
            f"<p style='color:{pal.error}'>⚠ {_html(p)}</p>" for p in problems))
        self.diag_label.setVisible(bool(problems))


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
