"""File → Export Model…: choose a format (each explained in a sentence or two) and a path.

The dialog only gathers the choice; `ModelFiles.export` copies the live weights on the
training thread and writes the files on a pool thread. On success the dialog closes and the
window reports what was written; on failure it stays open and says why in plain words.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from designer import theme

# (id, title, explanation, default name pattern, is a folder)
FORMATS: list[tuple[str, str, str, str, bool]] = [
    ("onnx", "ONNX  (.onnx)",
     "The inference graph in the open standard that runtimes read: onnxruntime, OpenVINO, "
     "TensorRT, the browser. Choose it to deploy the model or to inspect it in Netron.",
     "{stem}.onnx", False),
    ("torch", "PyTorch  (model.py + train.py + weights + data)",
     "A readable nn.Module with one layer per node, its weights, and a train.py that trains "
     "it exactly like Gradscape on a GPU or several (torchrun). Its checkpoints open here.",
     "{stem}_torch", True),
    ("safetensors", "safetensors  (weights only)",
     "Just the trained weights, keyed like the PyTorch module's state_dict; loading it runs "
     "no code. For tools that bring their own model definition.",
     "{stem}.safetensors", False),
    ("numpy", "Standalone NumPy  (.py + .npz)",
     "A small script that predicts with nothing but NumPy, preprocessing included. Use the "
     "model anywhere Python runs, without Gradscape.",
     "{stem}_numpy", True),
    ("gsmodel", "Gradscape model  (.gsmodel)",
     "Graph, weights, optimizer state and loss history in one file. Open it in Gradscape "
     "later and training continues exactly where it stopped.",
     "{stem}.gsmodel", False),
]
FORMAT_IDS = [f[0] for f in FORMATS]


class ExportDialog(QDialog):
    """The Export Model dialog of one window's ModelFiles.

    Prompts (tests replace them): `ask_path(title, start, is_folder) -> str | None`,
    `ask_overwrite(path) -> bool`.
    """

    def __init__(self, models, parent: QWidget | None = None):
        super().__init__(parent or models.window)
        self.models = models
        self.setWindowTitle("Export Model")
        self.ask_path = self._ask_path
        self.ask_overwrite = self._ask_overwrite
        self._folder = models.default_folder()
        self._stem = models.default_stem()
        pal = theme.current()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(10)
        heading = QLabel(f"<b>Export {self._stem}</b>")
        heading.setStyleSheet("font-size: 12pt;")
        layout.addWidget(heading)
        self.state_label = QLabel(self._state_text())
        self.state_label.setWordWrap(True)
        self.state_label.setStyleSheet(f"color: {pal.muted_text};")
        layout.addWidget(self.state_label)

        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        formats = QVBoxLayout(frame)
        formats.setContentsMargins(12, 10, 12, 10)
        formats.setSpacing(2)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        for k, (fid, title, text, _pattern, _folder) in enumerate(FORMATS):
            button = QRadioButton(title)
            button.setObjectName(f"format_{fid}")
            font = button.font()
            font.setBold(True)
            button.setFont(font)
            self.group.addButton(button, k)
            self.buttons[fid] = button
            desc = QLabel(text)
            desc.setWordWrap(True)
            desc.setStyleSheet(f"color: {pal.muted_text}; margin-left: 24px;")
            desc.setBuddy(button)
            formats.addWidget(button)
            formats.addWidget(desc)
            if k < len(FORMATS) - 1:
                formats.addSpacing(8)
        layout.addWidget(frame)

        row = QHBoxLayout()
        row.addWidget(QLabel("Save to:"))
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("export_path")
        self.path_edit.setMinimumWidth(380)
        row.addWidget(self.path_edit, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        row.addWidget(browse)
        layout.addLayout(row)
        self.hint_label = QLabel()
        self.hint_label.setStyleSheet(f"color: {pal.muted_text};")
        layout.addWidget(self.hint_label)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()
        layout.addWidget(self.status_label)

        self.button_box = QDialogButtonBox()
        self.export_button = self.button_box.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.button_box.addButton(QDialogButtonBox.StandardButton.Close)
        self.button_box.accepted.connect(self.start_export)
        self.button_box.rejected.connect(self.reject)
        layout.addWidget(self.button_box)

        self._failure = ""
        models.failed.connect(self._remember_failure)
        self.group.idToggled.connect(self._on_format)
        self.buttons["onnx"].setChecked(True)
        self.resize(620, self.sizeHint().height())

    # -- state ---------------------------------------------------------------------------
    def _state_text(self) -> str:
        report = self.models.session.last_report
        if report is None or report.step == 0:
            return ("The network has not been trained yet: the export holds its freshly "
                    "initialised weights.")
        loss = f", loss {report.loss:.4g}" if math.isfinite(report.loss) else ""
        steps = f"{report.step:,} step{'s' if report.step != 1 else ''}"
        return (f"Exports the live weights, trained for {steps} "
                f"(epoch {report.epoch}{loss}).")

    def format(self) -> str:
        return FORMAT_IDS[max(self.group.checkedId(), 0)]

    def set_format(self, fmt: str) -> None:
        self.buttons[fmt].setChecked(True)

    def path(self) -> Path:
        return Path(self.path_edit.text().strip()).expanduser()

    def set_path(self, path: str | Path) -> None:
        self.path_edit.setText(str(path))

    def default_path(self, fmt: str | None = None) -> Path:
        pattern = FORMATS[FORMAT_IDS.index(fmt or self.format())][3]
        return self._folder / pattern.format(stem=self._stem)

    def _is_folder(self, fmt: str) -> bool:
        return FORMATS[FORMAT_IDS.index(fmt)][4]

    def _on_format(self, _id: int, checked: bool) -> None:
        if not checked:
            return
        text = self.path_edit.text().strip()
        if text:
            self._folder = Path(text).expanduser().parent
        fmt = self.format()
        self.set_path(self.default_path(fmt))
        hint = ("A folder (created if needed) for model.py, train.py, the weights, the data "
                "and a README." if fmt == "torch" else
                "A folder (created if needed) that will hold model.py and the weights.")
        self.hint_label.setText(hint if self._is_folder(fmt) else "")
        self.hint_label.setVisible(self._is_folder(fmt))

    def browse(self) -> None:
        fmt = self.format()
        path = self.ask_path("Export Model", str(self.path()), self._is_folder(fmt))
        if path:
            self.set_path(path)

    # -- export --------------------------------------------------------------------------
    def start_export(self) -> bool:
        """Export with the chosen format and path (asynchronously); False if refused."""
        fmt, path = self.format(), self.path()
        if not self.path_edit.text().strip():
            self.show_status("Choose where to save the export.", error=True)
            return False
        if not self._is_folder(fmt):
            suffix = "." + ("gsmodel" if fmt == "gsmodel" else fmt)
            if path.suffix.lower() != suffix:
                path = path.with_name(path.name + suffix)
                self.set_path(path)
        target = path / "model.py" if self._is_folder(fmt) else path
        if target.exists() and not self.ask_overwrite(target):
            return False
        self.export_button.setEnabled(False)
        self.show_status(f"Exporting {path.name}…")
        self.models.export(fmt, path, self._finished)
        return True

    def _finished(self, result) -> None:
        self.export_button.setEnabled(True)
        if result is None:
            self.show_status(self._failure or "The export failed.", error=True)
            return
        self.show_status(result.message)
        self.accept()

    def show_status(self, text: str, error: bool = False) -> None:
        color = theme.current().error if error else theme.current().muted_text
        self.status_label.setStyleSheet(f"color: {color};")
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))

    def _remember_failure(self, text: str) -> None:
        self._failure = text

    # -- default prompts -------------------------------------------------------------------
    def _ask_path(self, title: str, start: str, is_folder: bool) -> str | None:
        if is_folder:
            path, _ = QFileDialog.getSaveFileName(self, f"{title}: folder to create", start, "")
        else:
            suffix = Path(start).suffix
            path, _ = QFileDialog.getSaveFileName(self, title, start,
                                                  f"{suffix[1:]} files (*{suffix})")
        return path or None

    def _ask_overwrite(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self, "Replace?", f"{path.name} already exists in {path.parent.name}. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes
