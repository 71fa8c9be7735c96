"""The main window: palette, canvas, inspector, training dock, menus and the status bar.

Prompts (save changes?, file dialogs, recovery, errors) are attributes holding callables, so
tests replace them and no real dialog ever blocks.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy
from PySide6.QtCore import QMimeData, QPoint, QSettings, Qt, qVersion
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

import engine
from designer import theme
from designer.canvas.canvas_actions import install_canvas_actions
from designer.canvas.scene import CanvasScene
from designer.canvas.view import CanvasView
from designer.controller import Controller
from designer.data.data_dock import install_data_dock
from designer.editing.add_loss import install_add_loss
from designer.editing.graph_stats import parameter_count
from designer.editing.inspector import Inspector
from designer.editing.palette import PaletteWidget
from designer.files.model_files import install_model_files, is_model_file, is_onnx_file
from designer.lab.gradient_tools import install_learning_lab_a
from designer.lab.live_views import install_lab_training
from designer.lab.optimization_tools import install_optimization_lab
from designer.lab.sequence_tools import install_sequence_lab
from designer.lab.training_loop_view import install_training_loop
from designer.presentation import install_presentation
from designer.resources import resource_path
from designer.training.health_notice import install_health_notice
from designer.training.setup import install_training
from designer.window_cleanup import release_plot_menus, release_window
from engine.errors import FileFormatError

GRAPH_MIME = "application/x-gradscape-graph"
FILE_FILTER = "Gradscape graphs (*.json);;All files (*)"
OPEN_FILTER = ("Models and graphs (*.json *.gsmodel *.onnx);;Gradscape graphs (*.json);;"
               "Trained models (*.gsmodel);;ONNX models (*.onnx);;All files (*)")
MAX_RECENT = 8
# Bumped when the default dock layout changes, so a layout saved by an older version (the
# Data dock in the left column, a wide right column) gives way to the new default.
LAYOUT_VERSION = 2
PALETTE_WIDTH = 150  # the left column: the canvas keeps the rest of a 1280-pixel window
ACRONYMS = {"xor", "mlp", "cnn", "rnn", "mse", "bce", "relu", "gelu", "mnist", "lstm", "gan"}

# Canvas gestures that are not menu actions, for the Shortcuts dialog.
GESTURES = [
    ("Quick add a node at the cursor", "Tab  /  right-click on empty canvas"),
    ("Connect", "Drag from an output port to an input port"),
    ("Re-route or remove a wire", "Drag its end off an input port"),
    ("Add the op a wire needs", "Release a wire on empty canvas"),
    ("Rename a node", "Double-click its title"),
    ("Pan", "Middle-drag  /  Space + drag"),
    ("Zoom around the cursor", "Mouse wheel  /  + and −"),
    ("Select several", "Drag a rubber band  /  Ctrl+click"),
    ("Cancel a wire", "Esc"),
    ("Open a block / close an open block", "Double-click the block  /  its frame's title bar"),
    ("Insert a node into a wire", "Drop an unwired node (or a palette op) on the wire"),
    ("Bend a wire", "Double-click the wire; drag the point; double-click it to remove"),
    ("Nudge the selection", "Arrow keys  /  Shift+arrows for a grid step"),
    ("Edit a note or frame", "Double-click it; drag its corner to resize"),
]


def example_title(path: Path) -> str:
    """Menu name of an example: its training "title", else the file name made readable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        title = (data.get("training") or {}).get("title")
        if isinstance(title, str) and title.strip():
            return title.strip()
    except (OSError, ValueError, AttributeError):
        pass
    words = path.stem.replace("-", "_").split("_")
    return " ".join(w.upper() if w.lower() in ACRONYMS else w.capitalize() for w in words if w)


def example_files() -> list[Path]:
    """Every JSON file in resources/examples/, sorted by name."""
    folder = resource_path("examples")
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def about_text() -> str:
    """Help → About: name, version, what it is, licence."""
    return (f"<h3>Gradscape {engine.__version__}</h3>"
            "<p>Draw a neural network, train it, and watch the gradients flow.</p>"
            f"<p>Python {platform.python_version()} · Qt {qVersion()} · NumPy {numpy.__version__}"
            "</p><p>Released under the MIT licence.</p>")


class MainWindow(QMainWindow):
    """The editor window around one Controller."""

    def __init__(self, controller: Controller | None = None, settings: QSettings | None = None):
        super().__init__()
        self.controller = controller or Controller(self)
        if self.controller.parent() is None:
            # The window owns its controller: deleting a closed window then drops the
            # controller's connections, whose lambdas would otherwise keep the window alive.
            self.controller.setParent(self)
        self.document = self.controller.document
        self.settings = settings if settings is not None else QSettings()
        self.actions: dict[str, QAction] = {}

        # Injectable prompts (tests replace these).
        self.ask_save_changes = self._ask_save_changes  # -> "save" | "discard" | "cancel"
        self.ask_open_path = self._ask_open_path  # -> path or None
        self.ask_save_path = self._ask_save_path  # -> path or None
        self.ask_revert = self._ask_revert  # -> bool
        self.ask_recover = self._ask_recover  # (list[Path]) -> "restore" | "discard" | "later"
        self.show_error = self._show_error  # (title, text) -> None

        self.scene = CanvasScene(self.controller, self)
        self.view = CanvasView(self.scene, self)
        self.setCentralWidget(self.view)
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()

        self.controller.modified_changed.connect(self.setWindowModified)
        self.controller.path_changed.connect(lambda _p: self._update_title())
        self.controller.message.connect(self.show_message)
        self.view.message.connect(self.show_message)
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.scene.selectionChanged.connect(self._on_selection)
        self.document.changed.connect(self._on_document_changed)
        self.document.reset.connect(self._on_reset)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_scheme)

        self.setWindowTitle("Gradscape")
        self.resize(1400, 850)
        self._restore_settings()
        self._update_title()
        self._on_document_changed()
        self.training = install_training(self)  # live training: dock, menu, overlay
        self.lab_training = install_lab_training(self)  # predictions, weights, backprop
        self.lab_a = install_learning_lab_a(self)  # chain rule, neurons, gradcheck, optimizer
        self.optimization_lab = install_optimization_lab(self)  # landscape, race, lr sweep
        self.sequence_lab = install_sequence_lab(self)  # attention, generate text
        self.models = install_model_files(self)  # .gsmodel open/save, File → Export Model…
        self.add_loss = install_add_loss(self)  # Train → Add Loss… (for imported models)
        self.data = install_data_dock(self)  # the data table and image-folder preview
        self.canvas_actions = install_canvas_actions(self)  # blocks, notes, arrange, minimap
        self.health = install_health_notice(self)  # a sentence when a run stops learning
        self.training_loop = install_training_loop(self)  # Learn → The Training Loop
        self.presentation = install_presentation(self)  # View → Presentation Mode (F11)

    # -- layout -------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget,
              area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState need names
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        # The training dock spans the whole width: its settings and plot need the room more
        # than the palette and the side panels need the height.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.palette_widget = PaletteWidget()
        self.palette_widget.op_activated.connect(
            lambda op: self.view.add_op_at(op, self.view.center_scene_pos()))
        self.palette_dock = self._dock("Palette", "palette_dock", self.palette_widget,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector = Inspector(self.controller)
        self.inspector_dock = self._dock("Inspector", "inspector_dock", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.undo_view = QUndoView(self.controller.undo_stack)
        self.undo_view.setEmptyLabel("<opened>")
        # History shares the narrow left column with the Palette: the right column's tabs
        # (Inspector, Chain Rule, Optimizer State) then keep their whole titles.
        self.history_dock = self._dock("History", "history_dock", self.undo_view,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.palette_dock, self.history_dock)
        self.palette_dock.raise_()
        self.training_label = QLabel()
        self.training_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.training_label.setWordWrap(True)
        self.training_label.setMinimumHeight(90)
        self.training_dock = self._dock("Training", "training_dock", self.training_label,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [PALETTE_WIDTH, 280],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.training_dock], [290], Qt.Orientation.Vertical)

    def _action(self, name: str, text: str, slot, shortcut=None, checkable: bool = False,
                checked: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        if checkable:
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _checked=False: slot())
        if tip:
            action.setStatusTip(tip)
        self.actions[name] = action
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sk = QKeySequence.StandardKey
        a = self._action
        a("new", "&New", self.file_new, QKeySequence(sk.New))
        a("open", "&Open…", self.file_open, QKeySequence(sk.Open))
        a("save", "&Save", self.file_save, QKeySequence(sk.Save))
        a("save_as", "Save &As…", self.file_save_as, QKeySequence(sk.SaveAs))
        a("revert", "&Revert", self.file_revert)
        a("quit", "&Quit", self.close, QKeySequence(sk.Quit))
        undo = self.controller.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence(sk.Undo))
        redo = self.controller.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence(sk.Redo), QKeySequence("Ctrl+Shift+Z")]
                          if QKeySequence(sk.Redo) != QKeySequence("Ctrl+Shift+Z")
                          else [QKeySequence(sk.Redo)])
        self.actions["undo"], self.actions["redo"] = undo, redo
        self.addAction(undo)
        self.addAction(redo)
        a("cut", "Cu&t", self.edit_cut, QKeySequence(sk.Cut))
        a("copy", "&Copy", self.edit_copy, QKeySequence(sk.Copy))
        a("paste", "&Paste", self.edit_paste, QKeySequence(sk.Paste))
        a("duplicate", "D&uplicate", self.edit_duplicate, QKeySequence("Ctrl+D"))
        a("delete", "&Delete", self.scene.delete_selection,
          [QKeySequence(sk.Delete), QKeySequence(Qt.Key.Key_Backspace)])
        a("select_all", "Select &All", self.edit_select_all, QKeySequence(sk.SelectAll))
        a("zoom_in", "Zoom &In", self.view.zoom_in, QKeySequence(sk.ZoomIn))
        a("zoom_out", "Zoom &Out", self.view.zoom_out, QKeySequence(sk.ZoomOut))
        a("zoom_reset", "Actual Size", self.view.reset_zoom, QKeySequence("Ctrl+0"))
        a("fit", "&Fit to View", self.view.fit_all, QKeySequence("F"))
        a("zoom_selection", "Zoom to &Selection", self.view.zoom_to_selection,
          QKeySequence("Shift+F"))
        a("grid", "Show &Grid", self.view.set_show_grid, QKeySequence("Ctrl+'"),
          checkable=True, checked=True)
        a("snap", "S&nap to Grid", self._set_snap, checkable=True, checked=False)
        a("wire_shapes", "Show Shapes on &Wires", self.scene.set_show_wire_shapes,
          checkable=True, checked=True)
        a("auto_layout", "Auto &Layout", self.auto_layout, QKeySequence("Ctrl+L"))
        a("shortcuts", "&Keyboard Shortcuts", self.show_shortcuts,
          QKeySequence(sk.HelpContents))
        a("about", "&About Gradscape", self.show_about)
        self.view.node_menu_actions = [self.actions[k] for k in
                                       ("cut", "copy", "duplicate", "delete")]

    def auto_layout(self) -> None:
        """Lay the graph out and frame it (the layout may move it anywhere)."""
        self.controller.auto_layout(self.view.legible_width())
        self.view.show_graph()

    def menu(self, name: str, title: str = "") -> QMenu:
        """The menu with this stable name ("file", "edit", "view", "panels", "examples",
        "train", "learn", "help"); with a `title`, a missing top-level menu is created just
        before Help. Plug-ins find menus here, never by their label text."""
        menu = self.menus.get(name)
        if menu is None:
            if not title:
                raise KeyError(f"no menu named {name!r}")
            menu = QMenu(title, self.menuBar())
            menu.setObjectName(f"{name}_menu")
            help_menu = self.menus.get("help")
            if help_menu is not None:
                self.menuBar().insertMenu(help_menu.menuAction(), menu)
            else:
                self.menuBar().addMenu(menu)
            self.menus[name] = menu
        return menu

    def _build_menus(self) -> None:
        bar = self.menuBar()
        act = self.actions
        file_menu = bar.addMenu("&File")
        file_menu.addActions([act["new"], act["open"]])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addActions([act["save"], act["save_as"], act["revert"]])
        file_menu.addSeparator()
        file_menu.addAction(act["quit"])

        edit = bar.addMenu("&Edit")
        edit.addActions([act["undo"], act["redo"]])
        edit.addSeparator()
        edit.addActions([act["cut"], act["copy"], act["paste"], act["duplicate"],
                         act["delete"]])
        edit.addSeparator()
        edit.addAction(act["select_all"])

        view = bar.addMenu("&View")
        view.addActions([act["zoom_in"], act["zoom_out"], act["zoom_reset"], act["fit"],
                         act["zoom_selection"]])
        view.addSeparator()
        view.addActions([act["grid"], act["snap"], act["wire_shapes"]])
        view.addSeparator()
        view.addAction(act["auto_layout"])
        view.addSeparator()
        panels = view.addMenu("&Panels")
        for dock in (self.palette_dock, self.inspector_dock, self.history_dock,
                     self.training_dock):
            panels.addAction(dock.toggleViewAction())

        self.examples_menu = bar.addMenu("E&xamples")
        for path in example_files():
            action = self.examples_menu.addAction(example_title(path))
            action.setData(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if not self.examples_menu.actions():
            self.examples_menu.addAction("No examples found").setEnabled(False)

        help_menu = bar.addMenu("&Help")
        help_menu.addActions([act["shortcuts"], act["about"]])
        self.menus = {"file": file_menu, "edit": edit, "view": view, "panels": panels,
                      "examples": self.examples_menu, "help": help_menu}
        for name, menu in self.menus.items():
            menu.setObjectName(f"{name}_menu")

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.problems_button = QToolButton()
        self.problems_button.setAutoRaise(True)
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.problems_button.clicked.connect(self.show_problems)
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(44)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addPermanentWidget(self.problems_button)
        bar.addPermanentWidget(self.zoom_label)

    # -- state shown ----------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _update_title(self) -> None:
        path = self.controller.path
        name = path.name if path else "Untitled"
        self.setWindowTitle(f"{name}[*] — Gradscape")
        self.setWindowModified(self.controller.is_modified())

    def status_text(self) -> str:
        """The graph-validity text of the status bar."""
        doc = self.document
        nodes = doc.nodes()
        if not nodes:
            return "Empty graph · drag an op from the palette"
        analysis = doc.analysis()
        n = len(analysis.diagnostics)
        if n:
            return f"⚠ {n} problem{'s' if n != 1 else ''}"
        count = parameter_count(nodes, analysis)
        return f"✓ Ready to train · {len(nodes)} nodes · {count:,} parameters"

    def _on_document_changed(self) -> None:
        text = self.status_text()
        self.problems_button.setText(text)
        bad = text.startswith("⚠")
        color = theme.current().error if bad else theme.current().ok
        self.problems_button.setStyleSheet(f"QToolButton {{ color: {color}; font-weight: 600; }}")
        self.problems_button.setToolTip("Click to list the problems" if bad else "")
        self._update_training_dock()

    def _update_training_dock(self) -> None:
        nodes = self.document.nodes()
        analysis = self.document.analysis()
        count = parameter_count(nodes, analysis)
        pal = theme.current()
        if not nodes:
            state = "Add an Input, a few layers and a loss to get started."
        elif analysis.ok:
            state = f"The graph is ready: {count:,} parameters to learn."
        else:
            n = len(analysis.diagnostics)
            state = (f"{count:,} parameters so far · fix {n} problem{'s' if n != 1 else ''}"
                     " (see the status bar) before training.")
        self.training_label.setText(
            f"<div style='color:{pal.muted_text}'><p style='font-size:11pt'>"
            f"<b>Training controls arrive here</b></p><p>{state}</p></div>")

    def problem_entries(self) -> list[tuple[str, str | None]]:
        """(message, node id or None) for every diagnostic of the graph."""
        return [(d.message, d.node) for d in self.document.analysis().diagnostics]

    def show_problems(self) -> QMenu | None:
        """Pop up the list of problems; choosing one selects (and shows) its node."""
        entries = self.problem_entries()
        if not entries:
            return None
        menu = QMenu(self)
        for message, node_id in entries:
            text = message if len(message) < 110 else message[:107] + "…"
            action = menu.addAction(("⚠ " if node_id else "• ") + text)
            action.setToolTip(message)
            action.triggered.connect(lambda _c=False, n=node_id: self.select_problem(n))
        button = self.problems_button
        menu.popup(button.mapToGlobal(QPoint(0, -menu.sizeHint().height())))
        return menu

    def select_problem(self, node_id: str | None) -> None:
        """Select a node named by a problem and bring it into view."""
        if node_id and node_id in self.scene.nodes:
            self.scene.select_nodes([node_id])
            self.view.centerOn(self.scene.nodes[node_id])
            self.view.setFocus()

    def _on_selection(self) -> None:
        # A selected closed block shows what is inside it (its nodes and their parameters).
        self.inspector.show_nodes(self.scene.selected_node_ids(include_blocks=True))

    def _on_reset(self) -> None:
        self.inspector.show_nodes([])
        self.view.show_graph()

    def _set_snap(self, on: bool) -> None:
        self.scene.snap_to_grid = on

    def _on_scheme(self, *_args) -> None:
        self.view.resetCachedContent()
        self.scene.restyle()
        self.inspector.show_nodes(self.scene.selected_node_ids())
        self._on_document_changed()

    # -- edit -----------------------------------------------------------------------------
    def edit_copy(self) -> bool:
        """Put the selected nodes, closed blocks and notes on the system clipboard as graph
        JSON."""
        ids = self.scene.selected_node_ids(include_blocks=True)
        notes = self.scene.selected_note_ids()
        if not ids and not notes:
            return False
        text = self.controller.copy_json(ids, notes)
        mime = QMimeData()
        mime.setData(GRAPH_MIME, text.encode("utf-8"))
        mime.setText(text)
        QGuiApplication.clipboard().setMimeData(mime)
        what = [f"{n} {word}{'s' if n != 1 else ''}"
                for n, word in ((len(ids), "node"), (len(notes), "note")) if n]
        self.show_message(f"Copied {' and '.join(what)}.")
        return True

    def edit_cut(self) -> None:
        if self.edit_copy():
            self.scene.delete_selection()

    def edit_paste(self) -> list[str]:
        """Paste graph JSON from the clipboard (at the cursor when it is over the canvas)."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return []
        if mime.hasFormat(GRAPH_MIME):
            text = bytes(mime.data(GRAPH_MIME).data()).decode("utf-8")
        else:
            text = mime.text()
        if not text.strip():
            return []
        vp = self.view.viewport()
        cursor = vp.mapFromGlobal(self.view.cursor().pos())
        at = None
        if vp.rect().contains(cursor) and vp.underMouse():
            p = self.view.mapToScene(cursor)
            at = (p.x(), p.y())
        ids = self.controller.paste_json(text, at)
        if ids:
            self.scene.select_nodes(ids)
        return ids

    def edit_duplicate(self) -> None:
        ids = self.controller.duplicate(self.scene.selected_node_ids(include_blocks=True),
                                        self.scene.selected_note_ids())
        if ids:
            self.scene.select_nodes(ids)

    def edit_select_all(self) -> None:
        """Select every node, closed block and note."""
        for items in (self.scene.nodes, self.scene.blocks, self.scene.notes):
            for item in items.values():
                item.setSelected(True)

    # -- files ----------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask before losing unsaved work. True if it is fine to go on."""
        if not self.controller.is_modified():
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.file_save()
        return answer == "discard"

    def file_new(self) -> None:
        if self.maybe_save():
            self.controller.new()

    def file_open(self) -> None:
        if not self.maybe_save():
            return
        path = self.ask_open_path()
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        """Open a graph file (asking about unsaved work first unless `ask` is False)."""
        if ask and not self.maybe_save():
            return False
        path = Path(path)
        try:
            if is_model_file(path) or is_onnx_file(path):
                self.models.open(path)  # graph, then the trained weights and history
            else:
                self.controller.open(path)
        except FileFormatError as exc:
            self.show_error("Cannot open the file", str(exc))
            return False
        if not self.is_example(path):
            self.add_recent(path)
        return True

    def is_example(self, path: Path | None) -> bool:
        if path is None:
            return False
        try:
            return path.resolve().parent == resource_path("examples").resolve()
        except OSError:
            return False

    def file_save(self) -> bool:
        """Save (Save As for untitled documents, the bundled examples and imports)."""
        path = self.controller.path
        if path is None or self.is_example(path) or is_onnx_file(path):
            return self.file_save_as()
        return self._save_to(path)

    def file_save_as(self) -> bool:
        path = self.ask_save_path()
        if not path:
            return False
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        if is_model_file(path):  # re-save the trained model: graph + live weights
            if not self.models.save_document(path):
                return False
            self.add_recent(path)
            return True
        try:
            self.controller.save_as(path)
        except OSError as exc:
            self.show_error("Cannot save the file", f"{path.name}: {exc.strerror or exc}")
            return False
        self.add_recent(path)
        return True

    def file_revert(self) -> None:
        if not self.controller.is_modified():
            return
        if not self.ask_revert():
            return
        if is_model_file(self.controller.path) or is_onnx_file(self.controller.path):
            self.open_path(self.controller.path, ask=False)
            return
        try:
            self.controller.revert()
        except FileFormatError as exc:
            self.show_error("Cannot revert", str(exc))

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: Path) -> None:
        entry = str(path.resolve())
        files = [entry] + [f for f in self.recent_files() if f != entry]
        self.settings.setValue("recent_files", files[:MAX_RECENT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = [f for f in self.recent_files() if Path(f).exists()]
        for f in files:
            action = self.recent_menu.addAction(Path(f).name)
            action.setToolTip(f)
            action.triggered.connect(lambda _c=False, p=f: self.open_path(p))
        if not files:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Menu").triggered.connect(
                lambda: self.settings.setValue("recent_files", []))

    def offer_recovery(self) -> None:
        """On start: offer to restore documents left by a session that crashed."""
        candidates = self.controller.recovery_candidates()
        if not candidates:
            return
        answer = self.ask_recover(candidates)
        if answer == "restore":
            try:
                self.controller.recover(candidates[0])
            except FileFormatError as exc:
                self.show_error("Cannot restore", str(exc))
        elif answer == "discard":
            for path in candidates:
                self.controller.discard_recovery(path)

    # -- default prompts ------------------------------------------------------------------
    def _ask_save_changes(self) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        name = self.controller.path.name if self.controller.path else "Untitled"
        box.setText(f"Save changes to {name}?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(QMessageBox.StandardButton.Save
                               | QMessageBox.StandardButton.Discard
                               | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(answer), "cancel")

    def _ask_revert(self) -> bool:
        answer = QMessageBox.question(
            self, "Revert", "Discard all changes and reload the file from disk?",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def _start_dir(self) -> str:
        path = self.controller.path
        if path is not None and not self.is_example(path):
            return str(path.parent)
        recent = self.recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open Graph", self._start_dir(), OPEN_FILTER)
        return path or None

    def _ask_save_path(self) -> str | None:
        path = self.controller.path
        name = path.name if path else "untitled.json"
        if is_onnx_file(path):  # an import keeps its weights in a Gradscape model
            name = path.with_suffix(".gsmodel").name
        start = str(Path(self._start_dir()) / name)
        path, _ = QFileDialog.getSaveFileName(self, "Save Graph As", start, FILE_FILTER)
        return path or None

    def _ask_recover(self, candidates: list[Path]) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setText("Gradscape did not close properly last time.")
        box.setInformativeText("Restore the unsaved graph it was working on?")
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "restore" if clicked is restore else "discard" if clicked is discard else "later"

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    # -- help -----------------------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(what, keys) for every action with a shortcut, then the canvas gestures."""
        rows = []
        for action in self.actions.values():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText)
                    for k in action.shortcuts() if not k.isEmpty()]
            if keys:
                rows.append((action.text().replace("&", "").rstrip("…"), "  /  ".join(keys)))
        return rows + GESTURES

    def shortcuts_dialog(self) -> QDialog:
        """A (not yet shown) dialog listing every shortcut and gesture."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard Shortcuts")
        layout = QVBoxLayout(dialog)
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2)
        table.setObjectName("shortcuts_table")
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        table.setAlternatingRowColors(True)
        for r, (what, keys) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(what))
            table.setItem(r, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(560, 560)
        return dialog

    def show_shortcuts(self) -> None:
        self.shortcuts_dialog().show()

    def show_about(self) -> None:
        QMessageBox.about(self, "About Gradscape", about_text())

    # -- settings -------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        # Docks added later ask this before `restoreDockWidget` (which also says True
        # when nothing was restored) to choose between the saved place and the default one.
        self.layout_restored = state is not None and self.restoreState(state, LAYOUT_VERSION)
        for key, name in (("view/grid", "grid"), ("view/snap", "snap"),
                          ("view/wire_shapes", "wire_shapes")):
            value = self.settings.value(key)
            if value is not None:
                self.actions[name].setChecked(str(value).lower() in ("true", "1"))

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.setValue("view/grid", self.actions["grid"].isChecked())
        self.settings.setValue("view/snap", self.actions["snap"].isChecked())
        self.settings.setValue("view/wire_shapes", self.actions["wire_shapes"].isChecked())

    def closeEvent(self, event) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.save_settings()
        self.controller.discard_recovery()
        event.accept()
        self.training.shutdown()  # no training thread outlives the window
        release_plot_menus(self)  # nor do the plots' parentless menus
        release_window(self)  # nor the window itself and its floating widgets
