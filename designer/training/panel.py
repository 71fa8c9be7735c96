"""The training panel (bottom dock): Play/Step/Reset, counters, and every training setting.

Settings are read from the document's `training` block and written back through
`controller.set_training` (one undo step per edit), so they are saved with the graph and
undo like any other edit. The form follows the document: undo, redo and opening a file
update the widgets in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from designer.editing.param_widgets import (
    LogSpinBox,
    NumberSpinBox,
    guard_number_box,
    param_editor,
    set_editor_value,
    wheel_only_with_focus,
)
from designer.training import session as states
from engine.data.generated import DATASETS
from engine.errors import GradscapeError
from engine.training.optim import OPTIMIZERS
from engine.training.schedules import SCHEDULES
from engine.training.trainer import TABLE_DATASET, TrainConfig

CSV_ITEM = "CSV file…"
TABLE_ITEM = "Data table (in this file)"
IMAGES_ITEM = "Image folder…"
CHECK_CSV_BYTES = 2_000_000  # CSV files up to this size are read once before they are used
BATCH_MODES = ("Full batch", "SGD (1 sample)", "Mini-batch")
STATE_TEXT = {
    states.EMPTY: "Empty graph", states.INVALID: "Cannot train: fix the graph",
    states.COMPILING: "Preparing…", states.READY: "Ready", states.RUNNING: "Training",
    states.PAUSED: "Paused", states.FINISHED: "Finished", states.DIVERGED: "Diverged",
    states.FAILED: "Cannot train",
}


class TrainingPanel(QWidget):
    """Controls and settings of one TrainingSession.

    Attributes:
        play_action, step_action, reset_action: QActions (F5 / F10 / Ctrl+R) to put in
            menus and tool bars.
        ask_csv_path: callable returning a CSV path or None (tests replace it).
        ask_image_folder: callable returning an image folder or None (tests replace it).
    """

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.controller = session.controller
        self.document = self.controller.document
        self.ask_csv_path: Callable[[], str | None] = self._ask_csv_path
        self.ask_image_folder: Callable[[], str | None] = self._ask_image_folder
        self._loading = False
        self.check_job = None  # the last file or folder check (tests wait for it)
        self._param_forms: dict[str, tuple[str, dict[str, QWidget]]] = {}

        self.play_action = QAction("Play", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.play_action.setToolTip("Play / pause training (F5, or Space on the canvas)")
        self.play_action.triggered.connect(session.toggle)
        self.step_action = QAction("Step", self)
        self.step_action.setShortcut(QKeySequence(Qt.Key.Key_F10))
        self.step_action.setToolTip("One optimizer step: forward, backward, update (F10)")
        self.step_action.triggered.connect(session.step)
        self.reset_action = QAction("Reset weights", self)
        self.reset_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reset_action.setToolTip("Re-initialise the weights from the seed (Ctrl+R)")
        self.reset_action.triggered.connect(session.reset_weights)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)
        outer.addLayout(self._build_controls())
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label.setStyleSheet(f"color: {theme.current().error};")
        self.problem_label.hide()
        outer.addWidget(self.problem_label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        scroll.setWidget(body)
        row = QHBoxLayout(body)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._build_data_box(), 1)
        row.addWidget(self._build_optimizer_box(), 1)
        row.addWidget(self._build_run_box(), 1)
        outer.addWidget(scroll, 1)

        session.state_changed.connect(self._on_state)
        session.report.connect(self._on_report)
        session.problem.connect(self._show_problem)
        session.weights_reset.connect(self._on_weights_reset)
        self.document.training_changed.connect(self.load_settings)
        self.document.reset.connect(self.load_settings)
        self.load_settings()
        self._on_state(session.state)
        for w in body.findChildren(QWidget):
            if isinstance(w, (QAbstractSpinBox, QComboBox)):
                w.setMinimumWidth(56)  # let the three columns share a narrow dock

    # -- building ------------------------------------------------------------------------
    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.play_button = QToolButton()
        self.play_button.setDefaultAction(self.play_action)
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.play_button.setMinimumWidth(80)
        self.step_button = QToolButton()
        self.step_button.setDefaultAction(self.step_action)
        self.reset_button = QToolButton()
        self.reset_button.setDefaultAction(self.reset_action)
        for b in (self.play_button, self.step_button, self.reset_button):
            row.addWidget(b)
        self._button_row, self._buttons_end = row, 3
        self.counter_label = QLabel("epoch 0 · step 0")
        self.counter_label.setFont(theme.mono_font(9))
        self.rate_label = QLabel("")
        self.rate_label.setFont(theme.mono_font(9))
        self.loss_label = QLabel("")
        self.loss_label.setFont(theme.mono_font(9))
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("font-weight: 600;")
        for label in (self.counter_label, self.loss_label, self.rate_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # Room for typical texts, so a long run's counter is not cut off by the loss beside it
        # (the policy stays Ignored: the texts change on every report without a relayout).
        for label, sample in ((self.counter_label, "epoch 1500 / 1500 · step 150,000"),
                              (self.loss_label, "loss 1.234e-05")):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance(sample) + 8)
        row.addSpacing(8)
        row.addWidget(self.counter_label, 3)
        row.addWidget(self.loss_label, 2)
        row.addWidget(self.rate_label, 2)
        row.addWidget(self.state_label)
        return row

    def add_button(self, action, text: str | None = None) -> QToolButton:
        """Put `action` on a button after Play/Step/Reset (e.g. Save Model from the File side)."""
        button = QToolButton()
        button.setDefaultAction(action)
        if text:
            button.setText(text)
        self._button_row.insertWidget(self._buttons_end, button)
        self._buttons_end += 1
        return button

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("Data")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dataset_combo = QComboBox()
        for info in DATASETS.values():
            self.dataset_combo.addItem(info.name, info.name)
            self.dataset_combo.setItemData(self.dataset_combo.count() - 1, info.description,
                                           Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.addItem(TABLE_ITEM, TABLE_DATASET)
        self.dataset_combo.setItemData(self.dataset_combo.count() - 1,
                                       "The rows typed or pasted in the Data dock, saved "
                                       "inside the graph file", Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.addItem(CSV_ITEM, None)
        self.dataset_combo.addItem(IMAGES_ITEM, IMAGES_ITEM)
        self.dataset_combo.setItemData(self.dataset_combo.count() - 1,
                                       "A folder with one sub-folder of PNG/JPEG images per "
                                       "class", Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.activated.connect(self._on_dataset_chosen)
        form.addRow("Data set", self.dataset_combo)
        self.images_row = QWidget()
        images_row, self.images_label = _path_row(self.choose_image_folder)
        self.images_row.setLayout(images_row)
        images_row.setContentsMargins(0, 0, 0, 0)
        self.images_row.hide()
        form.addRow(self.images_row)
        self.table_label = QLabel()  # what the table holds; it is edited in the Data dock
        self.table_label.setWordWrap(True)
        self.table_label.setStyleSheet(f"color: {theme.current().muted_text};")
        self.table_label.hide()
        form.addRow(self.table_label)
        self.standardize_check = QCheckBox("Standardize features (mean 0, std 1)")
        self.standardize_check.setToolTip(
            "On: each feature column is shifted and scaled to mean 0 and std 1 (predict and "
            "exports do the same to new rows).\nOff: the network sees your numbers as "
            "written, so a hand calculation matches.")
        self.standardize_check.toggled.connect(lambda on: self._set("standardize", bool(on)))
        form.addRow(self.standardize_check)
        self.dataset_form = QFormLayout()
        form.addRow(self.dataset_form)
        self.val_spin = NumberSpinBox(0.0, 0.9, 0.05)
        self.val_spin.setToolTip("Fraction of the samples held out to measure validation loss.")
        self.val_spin.valueChanged.connect(lambda v: self._set("validation_split", float(v)))
        form.addRow("Validation", self.val_spin)

        self.csv_box = QWidget()
        csv = QFormLayout(self.csv_box)
        csv.setContentsMargins(0, 0, 0, 0)
        path_row, self.csv_path_label = _path_row(self.choose_csv)
        csv.addRow("File", path_row)
        self.target_combo = QComboBox()
        self.target_combo.activated.connect(lambda _i: self._save_csv_columns())
        csv.addRow("Target", self.target_combo)
        self.feature_list = QListWidget()
        self.feature_list.setMaximumHeight(90)
        self.feature_list.itemChanged.connect(lambda _item: self._save_csv_columns())
        csv.addRow("Features", self.feature_list)
        self.preview_table = QTableWidget()
        self.preview_table.setMaximumHeight(140)
        self.preview_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.preview_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        csv.addRow(self.preview_table)
        self.csv_box.hide()
        form.addRow(self.csv_box)
        return box

    def _build_optimizer_box(self) -> QGroupBox:
        box = QGroupBox("Optimizer")
        form = QFormLayout(box)
        self.optimizer_combo = QComboBox()
        for info in OPTIMIZERS.values():
            self.optimizer_combo.addItem(info.label, info.name)
            self.optimizer_combo.setItemData(self.optimizer_combo.count() - 1,
                                             f"{info.description}\n{info.formula}",
                                             Qt.ItemDataRole.ToolTipRole)
        self.optimizer_combo.activated.connect(self._on_optimizer_chosen)
        form.addRow("Optimizer", self.optimizer_combo)
        self.lr_spin = LogSpinBox()
        self.lr_spin.setToolTip("Learning rate α: the size of each step against the gradient. "
                                "The arrows walk 1-2-5 steps per decade.")
        self.lr_spin.valueChanged.connect(lambda v: self._set("lr", float(v)))
        form.addRow("Learning rate", self.lr_spin)
        self.optimizer_formula = QLabel()
        self.optimizer_formula.setFont(theme.mono_font(8.5))
        self.optimizer_formula.setWordWrap(True)
        form.addRow(self.optimizer_formula)
        self.optimizer_form = QFormLayout()
        form.addRow(self.optimizer_form)
        self.schedule_combo = QComboBox()
        for info in SCHEDULES.values():
            self.schedule_combo.addItem(info.label, info.name)
            self.schedule_combo.setItemData(self.schedule_combo.count() - 1,
                                            f"{info.description}\n{info.formula}",
                                            Qt.ItemDataRole.ToolTipRole)
        self.schedule_combo.activated.connect(
            lambda _i: self._set_many(schedule=self.schedule_combo.currentData(),
                                      schedule_params={}))
        form.addRow("Schedule", self.schedule_combo)
        self.schedule_form = QFormLayout()
        form.addRow(self.schedule_form)
        return box

    def _build_run_box(self) -> QGroupBox:
        box = QGroupBox("Run")
        form = QFormLayout(box)
        batch_row = QHBoxLayout()
        self.batch_combo = QComboBox()
        self.batch_combo.addItems(list(BATCH_MODES))
        self.batch_combo.activated.connect(lambda _i: self._save_batch())
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(2, 1_000_000)
        self.batch_spin.setKeyboardTracking(False)
        self.batch_spin.valueChanged.connect(lambda _v: self._save_batch())
        batch_row.addWidget(self.batch_combo, 1)
        batch_row.addWidget(self.batch_spin)
        form.addRow("Batch", batch_row)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(0, 10_000_000)
        self.epochs_spin.setKeyboardTracking(False)
        self.epochs_spin.setToolTip("Passes over the training data per Play (0: until paused).")
        self.epochs_spin.valueChanged.connect(lambda v: self._set("epochs", int(v)))
        form.addRow("Epochs", self.epochs_spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seeds the data, the shuffling and the initial weights.")
        self.seed_spin.valueChanged.connect(lambda v: self._set("seed", int(v)))
        form.addRow("Seed", self.seed_spin)
        self.l1_spin = NumberSpinBox(0.0, 10.0, 1e-4)
        self.l1_spin.setToolTip("L1 penalty λ₁·Σ|θ| added to the loss (0: off).")
        self.l1_spin.valueChanged.connect(lambda v: self._set("l1", float(v)))
        form.addRow("L1", self.l1_spin)
        self.l2_spin = NumberSpinBox(0.0, 10.0, 1e-4)
        self.l2_spin.setToolTip("L2 penalty λ₂/2·Σθ² added to the loss (0: off).")
        self.l2_spin.valueChanged.connect(lambda v: self._set("l2", float(v)))
        form.addRow("L2", self.l2_spin)
        self.clip_spin = NumberSpinBox(0.0, 1e6, 0.5)
        self.clip_spin.setToolTip("Rescale the whole gradient when its L2 norm exceeds this "
                                  "(0: no clipping).")
        self.clip_spin.valueChanged.connect(lambda v: self._set("clip_norm", float(v)))
        form.addRow("Clip norm", self.clip_spin)
        self.dtype_combo = QComboBox()
        self.dtype_combo.addItems(["float32", "float64"])
        self.dtype_combo.setToolTip("float64 gives exact teaching numbers; float32 is faster.")
        self.dtype_combo.activated.connect(
            lambda _i: self._set("dtype", self.dtype_combo.currentText()))
        form.addRow("Precision", self.dtype_combo)
        for spin, label in ((self.val_spin, "Validation"), (self.lr_spin, "Learning rate"),
                            (self.batch_spin, "Batch size"), (self.epochs_spin, "Epochs"),
                            (self.seed_spin, "Seed"), (self.l1_spin, "L1"),
                            (self.l2_spin, "L2"), (self.clip_spin, "Clip norm")):
            guard_number_box(spin, label)
        for combo in (self.dataset_combo, self.optimizer_combo, self.schedule_combo,
                      self.batch_combo, self.dtype_combo):
            wheel_only_with_focus(combo)
        return box

    # -- document -> widgets -------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The document's training settings (defaults where missing or invalid)."""
        block = self.document.training()
        try:
            return TrainConfig.from_block(block)
        except (GradscapeError, TypeError, ValueError):
            return TrainConfig()

    def load_settings(self) -> None:
        """Show the document's training block in the widgets (no edits are emitted)."""
        self._loading = True
        widgets = [self.dataset_combo, self.val_spin, self.optimizer_combo, self.lr_spin,
                   self.schedule_combo, self.batch_combo, self.batch_spin, self.epochs_spin,
                   self.seed_spin, self.l1_spin, self.l2_spin, self.clip_spin, self.dtype_combo,
                   self.target_combo, self.feature_list, self.standardize_check]
        for w in widgets:
            w.blockSignals(True)
        try:
            cfg = self.config()
            if cfg.csv:
                self.dataset_combo.setCurrentIndex(self.dataset_combo.findText(CSV_ITEM))
            elif cfg.images:
                self.dataset_combo.setCurrentIndex(self.dataset_combo.findText(IMAGES_ITEM))
            else:
                self.dataset_combo.setCurrentIndex(max(self.dataset_combo.findData(cfg.dataset),
                                                       0))
            self.val_spin.setValue(float(cfg.validation_split))
            self.optimizer_combo.setCurrentIndex(max(self.optimizer_combo.findData(
                cfg.optimizer), 0))
            self.lr_spin.setValue(float(cfg.lr))
            self.schedule_combo.setCurrentIndex(max(self.schedule_combo.findData(cfg.schedule),
                                                    0))
            bs = cfg.batch_size or 0
            self.batch_combo.setCurrentIndex(0 if bs == 0 else 1 if bs == 1 else 2)
            self.batch_spin.setValue(bs if bs >= 2 else 32)
            self.batch_spin.setEnabled(bs >= 2)
            self.epochs_spin.setValue(int(cfg.epochs))
            self.seed_spin.setValue(int(cfg.seed))
            self.l1_spin.setValue(float(cfg.l1))
            self.l2_spin.setValue(float(cfg.l2))
            self.clip_spin.setValue(float(cfg.clip_norm))
            self.dtype_combo.setCurrentText(cfg.dtype)
            info = OPTIMIZERS.get(cfg.optimizer)
            self.optimizer_formula.setText(info.formula if info else "")
            self._fill_csv(cfg)
            self.images_row.setVisible(bool(cfg.images) and not cfg.csv)
            self.images_label.setText(Path(cfg.images).name if cfg.images else "")
            self.images_label.setToolTip(cfg.images or "")
            self.standardize_check.setChecked(cfg.standardize)
            uses_table = cfg.dataset == TABLE_DATASET and not cfg.csv and not cfg.images
            self.table_label.setVisible(uses_table)
            self.table_label.setText(_table_summary(cfg.data) if uses_table else "")
            self.standardize_check.setVisible(bool(cfg.csv) or (
                cfg.dataset == TABLE_DATASET and not cfg.images))
        finally:
            for w in widgets:
                w.blockSignals(False)
            self._loading = False
        data = None if cfg.csv or cfg.images else DATASETS.get(cfg.dataset)
        self._fill_params("dataset_params", self.dataset_form, f"data:{cfg.csv or cfg.dataset}",
                          data.params if data else (), cfg.dataset_params)
        opt = OPTIMIZERS.get(cfg.optimizer)
        self._fill_params("optimizer_params", self.optimizer_form, f"opt:{cfg.optimizer}",
                          opt.params if opt else (),
                          {**(opt.defaults if opt else {}), **cfg.optimizer_params})
        sched = SCHEDULES.get(cfg.schedule)
        self._fill_params("schedule_params", self.schedule_form, f"sched:{cfg.schedule}",
                          sched.params if sched else (),
                          {**(sched.defaults if sched else {}), **cfg.schedule_params})

    def _fill_params(self, key: str, form: QFormLayout, schema: str, params,
                     values: dict[str, Any]) -> None:
        """Editors for a settings dict; rebuilt only when the schema changes (keeps focus)."""
        known = self._param_forms.get(key)
        if known is not None and known[0] == schema:
            for p in params:
                set_editor_value(known[1][p.name], values.get(p.name, p.default))
            return
        while form.rowCount():
            form.removeRow(0)
        editors = {}
        for p in params:
            value = values.get(p.name, p.default)
            editors[p.name] = param_editor(
                p, value, lambda v, name=p.name: self._set_param(key, name, v))
            editors[p.name].setMinimumWidth(56)
            form.addRow(p.name.replace("_", " "), editors[p.name])
        self._param_forms[key] = (schema, editors)

    def _fill_csv(self, cfg: TrainConfig) -> None:
        self.csv_box.setVisible(bool(cfg.csv))
        if not cfg.csv:
            return
        self.csv_path_label.setText(Path(cfg.csv).name)
        self.csv_path_label.setToolTip(cfg.csv)
        try:
            from engine.data import csv_preview

            columns, rows, _header = csv_preview(cfg.csv)
        except (GradscapeError, OSError) as exc:
            columns, rows = [], []
            self._show_problem(str(exc))
        target = (cfg.target_columns or [columns[-1] if columns else ""])[0]
        self.target_combo.clear()
        self.target_combo.addItems(columns)
        self.target_combo.setCurrentText(str(target))
        self.feature_list.clear()
        chosen = set(cfg.feature_columns or [c for c in columns if c != target])
        for c in columns:
            if c == target:
                continue
            item = QListWidgetItem(c)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if c in chosen
                               else Qt.CheckState.Unchecked)
            self.feature_list.addItem(item)
        self.preview_table.clear()
        self.preview_table.setColumnCount(len(columns))
        self.preview_table.setRowCount(len(rows))
        self.preview_table.setHorizontalHeaderLabels(columns)
        for r, fields in enumerate(rows):
            for c, text in enumerate(fields[:len(columns)]):
                self.preview_table.setItem(r, c, QTableWidgetItem(text))

    # -- widgets -> document -------------------------------------------------------------
    def _set(self, key: str, value: Any) -> None:
        self._set_many(**{key: value})

    def _set_many(self, **changes: Any) -> None:
        """Write changed settings to the document's training block (one undo step)."""
        if self._loading:
            return
        block = self.document.training()
        for key, value in changes.items():
            if value is None:
                block.pop(key, None)
            else:
                block[key] = value
        self.controller.set_training(block)

    def _set_param(self, key: str, name: str, value: Any) -> None:
        params = dict(self.document.training().get(key) or {})
        params[name] = value
        self._set(key, params)

    def _on_dataset_chosen(self, index: int) -> None:
        name = self.dataset_combo.itemData(index)
        if name is None:
            self.choose_csv()
            return
        if name == IMAGES_ITEM:
            self.choose_image_folder()
            return
        extra = {}
        if name == TABLE_DATASET and "data" not in self.document.training():
            from designer.data.table_edits import table_of

            extra["data"] = table_of({})  # an empty x, y table to fill in the Data dock
        self._set_many(dataset=name, dataset_params={}, csv=None, images=None,
                       target_columns=None, feature_columns=None, **extra)

    def choose_csv(self) -> None:
        """Ask for a CSV file and train on it (last column as target by default).

        The file is read once on a thread first; a broken file is refused with its line and
        column and the document stays as it was.
        """
        path = self.ask_csv_path()
        if not path:
            self.load_settings()  # back to what the document says
            return
        change = dict(csv=str(path), images=None, target_columns=None, feature_columns=None)
        if not (Path(path).is_file() and Path(path).stat().st_size <= CHECK_CSV_BYTES):
            self._set_many(**change)  # a big file is checked when training loads it
            return
        from engine.data import load_csv

        self._check_then_set(lambda: load_csv(path, standardize=False), change)

    def choose_image_folder(self) -> None:
        """Ask for a folder of class sub-folders and train on its images.

        The folder is checked on a thread first (classes, at least one image each, readable
        headers); if it cannot be used the document is left as it was and the reason shown.
        """
        folder = self.ask_image_folder()
        if not folder:
            self.load_settings()
            return
        from engine.data.images import check_image_folder

        self._check_then_set(lambda: check_image_folder(folder),
                             dict(images=str(folder), csv=None, target_columns=None,
                                  feature_columns=None))

    def _check_then_set(self, check: Callable[[], Any], change: dict[str, Any]) -> None:
        """Run `check` off the GUI thread; then write `change`, or show why not."""
        from designer.lab.background import start_job

        def refused(message: str) -> None:
            self.load_settings()
            self._show_problem(message)

        self._show_problem("")
        self.check_job = start_job(lambda _job: check(), parent=self, name="data-check",
                                   on_done=lambda _r: self._set_many(**change),
                                   on_failed=refused)

    def _save_csv_columns(self) -> None:
        if self._loading:
            return
        target = self.target_combo.currentText()
        features = [self.feature_list.item(i).text() for i in range(self.feature_list.count())
                    if self.feature_list.item(i).checkState() == Qt.CheckState.Checked
                    and self.feature_list.item(i).text() != target]
        self._set_many(target_columns=[target] if target else None,
                       feature_columns=features or None)

    def _on_optimizer_chosen(self, index: int) -> None:
        info = OPTIMIZERS[self.optimizer_combo.itemData(index)]
        self._set_many(optimizer=info.name, optimizer_params={}, lr=info.lr)

    def _save_batch(self) -> None:
        mode = self.batch_combo.currentIndex()
        size = 0 if mode == 0 else 1 if mode == 1 else int(self.batch_spin.value())
        self.batch_spin.setEnabled(mode == 2)
        self._set("batch_size", size)

    def _ask_csv_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Train on a CSV file", "",
                                              "CSV files (*.csv *.tsv *.txt);;All files (*)")
        return path or None

    def _ask_image_folder(self) -> str | None:
        return QFileDialog.getExistingDirectory(
            self, "Train on a folder of images (one sub-folder per class)") or None

    # -- session -> widgets --------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        running = state == states.RUNNING
        self.play_action.setText("Pause" if running else "Play")
        self.state_label.setText(STATE_TEXT.get(state, state))
        can = state not in (states.EMPTY, states.INVALID, states.FAILED)
        self.step_action.setEnabled(can)
        if not running:
            self.rate_label.setText("")

    def _on_report(self, report) -> None:
        target = report.target_epoch or self.config().epochs
        epochs = f"epoch {report.epoch}" + (f" / {target}" if target else "")
        self.counter_label.setText(f"{epochs} · step {report.step:,}")
        loss = report.loss
        self.loss_label.setText(f"loss {loss:.4g}" if math.isfinite(loss) else "loss —")
        if report.running and report.steps_per_second:
            self.rate_label.setText(f"{report.steps_per_second:,.0f} steps/s")

    def _on_weights_reset(self) -> None:
        self.counter_label.setText("epoch 0 · step 0")
        self.loss_label.setText("")

    def _show_problem(self, text: str) -> None:
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))


def _path_row(choose: Callable[[], None]) -> tuple[QHBoxLayout, QLabel]:
    """A row with a file or folder name (elided by the layout) and a Choose… button."""
    row = QHBoxLayout()
    label = QLabel()
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    button = QPushButton("Choose…")
    button.clicked.connect(choose)
    row.addWidget(label, 1)
    row.addWidget(button)
    return row, label


def _table_summary(data: Any) -> str:
    """"3 rows: x → y. Edit them in the Data dock." for the training block's table."""
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        return "No table yet: add rows in the Data dock (View → Panels → Data)."
    cols = [str(c) for c in data["columns"]]
    targets = data.get("targets") if isinstance(data.get("targets"), list) else cols[-1:]
    feats = [c for c in cols if c not in targets]
    rows = len(data.get("rows") or [])
    return (f"{rows} row{'s' if rows != 1 else ''}: {', '.join(feats)} → {', '.join(targets)}. "
            "Edit them in the Data dock.")
