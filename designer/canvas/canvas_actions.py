"""Menu actions for blocks, notes and arranging nodes, installed into the main window.

`install_canvas_actions(window)` adds to the Edit menu: Group into Block (Ctrl+G), Ungroup
(Ctrl+Shift+G), Open/Close Block, Save Block to Palette…, Add Sticky Note, Add Comment
Frame and an Arrange submenu (align, distribute); to the View menu: Show Minimap. It also
fills the palette's "Blocks" and "My blocks" from the controller's block library.
Every action calls one controller method, which pushes one undo step.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QAction, QKeySequence

from designer.controller import ALIGN_MODES

NOTE_SIZE = (200.0, 110.0)
FRAME_PAD = 40.0

ALIGN_TEXT = {"left": "Align &Left Edges", "hcenter": "Align Horizontal &Centres",
              "right": "Align &Right Edges", "top": "Align &Top Edges",
              "vcenter": "Align &Vertical Centres", "bottom": "Align &Bottom Edges"}


class CanvasActions:
    """The actions (by name in `window.actions`) and what they do."""

    def __init__(self, window):
        self.window = window
        self.controller = window.controller
        self.scene = window.scene
        self.view = window.view

    # -- blocks --------------------------------------------------------------------------
    def group(self) -> None:
        ids = self.scene.selected_node_ids()
        reason = self.controller.group_nodes(ids, "Block")
        if reason:
            self._refuse(reason)
            return
        self.scene.select_group(self.controller.last_group_id())

    def _chosen_groups(self) -> list[str]:
        """Selected closed blocks, and the open blocks of selected nodes."""
        doc = self.controller.document
        ids = list(self.scene.selected_group_ids())
        for n in self.scene.selected_node_ids():
            g = doc.group_of(n)
            if g is not None and g.id not in ids:
                ids.append(g.id)
        return ids

    def ungroup(self) -> None:
        groups = self._chosen_groups()
        if not groups:
            self._refuse("Select a block to ungroup.")
            return
        members = [m for g in groups for m in self.controller.document.group(g).nodes]
        for g in groups:
            self.controller.ungroup(g)
        self.scene.select_nodes(members)

    def toggle_open(self) -> None:
        groups = self._chosen_groups()
        if not groups:
            self._refuse("Select a block to open, or a node of an open block to close it.")
            return
        for g in groups:
            if self.controller.document.group(g).collapsed:
                self.scene.open_block(g)
            else:
                self.controller.set_block_open(g, False)

    def save_block(self) -> None:
        groups = self._chosen_groups()
        if len(groups) != 1:
            self._refuse("Select one block to save to the palette.")
            return
        try:
            self.controller.save_block(groups[0])
        except OSError as exc:
            self.window.show_error("Cannot save the block",
                                   f"The block library could not be written: {exc.strerror}.")
            return
        self.refresh_palette()

    def refresh_palette(self) -> None:
        self.window.palette_widget.set_blocks(self.controller.blocks.entries())

    def add_block_at_centre(self, path: str) -> None:
        self.view.add_block_at(path, self.view.center_scene_pos())

    # -- notes ---------------------------------------------------------------------------
    def add_note(self) -> None:
        c = self.view.center_scene_pos()
        rect = (round(c.x() - NOTE_SIZE[0] / 2), round(c.y() - NOTE_SIZE[1] / 2), *NOTE_SIZE)
        note_id = self.controller.add_note("note", rect)
        self._edit(note_id)

    def add_frame(self) -> None:
        """A comment frame around the selected nodes and blocks (or in the middle)."""
        items = [self.scene.nodes[n] for n in self.scene.selected_node_ids()]
        items += [self.scene.blocks[g] for g in self.scene.selected_group_ids()]
        area = QRectF()
        for item in items:
            area = area.united(item.sceneBoundingRect())
        if area.isEmpty():
            c = self.view.center_scene_pos()
            area = QRectF(c - QPointF(200, 110), c + QPointF(200, 110))
        area = area.adjusted(-FRAME_PAD, -FRAME_PAD - 20, FRAME_PAD, FRAME_PAD)
        note_id = self.controller.add_note(
            "frame", (round(area.x()), round(area.y()), round(area.width()),
                      round(area.height())))
        self._edit(note_id)

    def _edit(self, note_id: str) -> None:
        item = self.scene.notes.get(note_id)
        if item is not None:
            self.scene.clearSelection()
            item.setSelected(True)
            item.start_editing()
            item.editor.setFocus()
            cursor = item.editor.textCursor()
            cursor.select(cursor.SelectionType.Document)
            item.editor.setTextCursor(cursor)

    # -- arrange -------------------------------------------------------------------------
    def align(self, mode: str) -> None:
        ids = self.scene.selected_node_ids()
        reason = self.controller.align(ids, mode, self.scene.item_sizes(ids))
        if reason:
            self._refuse(reason)

    def distribute(self, axis: str) -> None:
        ids = self.scene.selected_node_ids()
        reason = self.controller.distribute(ids, axis, self.scene.item_sizes(ids))
        if reason:
            self._refuse(reason)

    def _refuse(self, reason: str) -> None:
        self.view.show_feedback(reason, self.view.center_scene_pos())


def _menu(window, text: str):
    return next((a.menu() for a in window.menuBar().actions() if a.text() == text), None)


def install_canvas_actions(window) -> CanvasActions:
    """Create the actions, put them in the Edit and View menus and fill the palette."""
    ca = CanvasActions(window)
    a = window._action
    a("group", "&Group into Block", ca.group, QKeySequence("Ctrl+G"),
      tip="Make the selected nodes one block whose ports are the wires crossing its border")
    a("ungroup", "&Ungroup Block", ca.ungroup, QKeySequence("Ctrl+Shift+G"),
      tip="Dissolve the selected block; its nodes stay exactly as they were")
    a("open_block", "&Open/Close Block", ca.toggle_open, QKeySequence("Ctrl+Shift+O"),
      tip="Show a block's nodes in place, or fold them back into one block")
    a("save_block", "Save Block to &Palette…", ca.save_block,
      tip="Keep a copy of the selected block under My blocks in the palette")
    a("add_note", "Add Sticky &Note", ca.add_note, QKeySequence("Ctrl+Shift+N"),
      tip="A note for people on the canvas; the network ignores it")
    a("add_frame", "Add Comment &Frame", ca.add_frame, QKeySequence("Ctrl+Shift+F"),
      tip="A titled frame around the selected nodes; the network ignores it")
    for mode in ALIGN_MODES:
        a(f"align_{mode}", ALIGN_TEXT[mode], lambda m=mode: ca.align(m))
    a("distribute_horizontal", "Distribute &Horizontally",
      lambda: ca.distribute("horizontal"))
    a("distribute_vertical", "Distribute V&ertically", lambda: ca.distribute("vertical"))
    minimap = QAction("Show &Minimap", window)
    minimap.setCheckable(True)
    minimap.setChecked(True)
    minimap.toggled.connect(window.view.minimap.set_enabled)
    window.actions["minimap"] = minimap

    act = window.actions
    edit = _menu(window, "&Edit")
    if edit is not None:
        edit.addSeparator()
        edit.addActions([act["group"], act["ungroup"], act["open_block"], act["save_block"]])
        edit.addSeparator()
        edit.addActions([act["add_note"], act["add_frame"]])
        arrange = edit.addMenu("&Arrange")
        arrange.addActions([act[f"align_{m}"] for m in ALIGN_MODES[:3]])
        arrange.addSeparator()
        arrange.addActions([act[f"align_{m}"] for m in ALIGN_MODES[3:]])
        arrange.addSeparator()
        arrange.addActions([act["distribute_horizontal"], act["distribute_vertical"]])
    view_menu = _menu(window, "&View")
    if view_menu is not None:
        view_menu.insertAction(act["grid"], minimap)
    window.view.node_menu_actions.extend([act["group"]])
    window.view.block_menu_actions = [act["open_block"], act["ungroup"], act["save_block"],
                                      act["delete"]]
    window.palette_widget.block_activated.connect(ca.add_block_at_centre)
    ca.refresh_palette()
    return ca
