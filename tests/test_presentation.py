"""View → Presentation Mode: large type, thick wires, only the lesson's docks; undone exactly."""

from PySide6.QtWidgets import QApplication

from designer import theme
from tests.gui import make_window, open_example


def test_presentation_mode_on_and_off(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    open_example(qtbot, win, "chain_rule.json")
    win.view.show_graph()
    zoom, font_size = win.view.zoom(), QApplication.font().pointSizeF()
    edge = next(iter(win.scene.edges.values()))
    width = edge.pen().widthF()
    action = win.actions["presentation"]
    assert action.shortcut().toString() == "F11"
    action.trigger()
    assert win.presentation.on
    assert not win.palette_dock.isVisible() and not win.inspector_dock.isVisible()
    assert not win.training_dock.isVisible()  # the tool bar keeps Play and Step
    assert not win.lab_training.predictions_dock.isVisible()  # no lesson panel raised
    view = win.view
    for item in win.scene.nodes.values():  # the whole graph fits at the large zoom
        rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        assert view.viewport().rect().contains(rect), item.node_id
    assert QApplication.font().pointSizeF() == font_size * 1.5
    assert edge.pen().widthF() > 1.5 * width
    low = theme.legible_zoom() * 1.5
    assert win.view.zoom() >= low - 1e-9
    smallest = min(theme.CANVAS_PX.values())
    assert smallest * win.view.zoom() >= 15.0  # canvas text at least 15 px on screen
    action.trigger()
    assert not win.presentation.on
    qtbot.waitUntil(win.palette_dock.isVisible, timeout=2000)
    assert win.inspector_dock.isVisible() and win.training_dock.isVisible()
    assert QApplication.font().pointSizeF() == font_size
    assert edge.pen().widthF() == width
    assert abs(win.view.zoom() - zoom) < 1e-9


def test_presentation_keeps_the_raised_lesson_panel(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    open_example(qtbot, win, "chain_rule.json")
    win.actions["learn_chain_rule"].trigger()
    qtbot.wait(30)
    win.actions["presentation"].trigger()
    assert win.lab_a.chain_dock.isVisible()
    assert not win.lab_training.predictions_dock.isVisible()
    win.actions["presentation"].trigger()


def test_presentation_scales_the_legend_the_confusion_matrix_and_the_neuron_card(qtbot,
                                                                                   tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    session = open_example(qtbot, win, "xor_mlp.json")
    session.step()
    qtbot.waitUntil(lambda: win.training.overlay.last_report is not None, timeout=5000)
    win.scene.select_nodes(["h1"])
    win.lab_a.toggle_neurons()
    card = win.lab_a.neurons.cards["h1"]
    legend, bar = win.training.legend, win.training.legend.bar
    confusion = win.lab_training.predictions.confusion
    win.view.show_graph()

    def sizes() -> dict[str, float]:
        """On-screen sizes: panel fonts in points, canvas text in screen pixels."""
        zoom = win.view.zoom()
        return {"legend": bar.label_font().pointSizeF(),
                "legend combo": legend.mode_combo.font().pointSizeF(),
                "legend height": legend.sizeHint().height(),
                "confusion names": confusion.name_font().pointSizeF(),
                "card footer": card.footer.font().pixelSize() * zoom,
                "card numbers": card.in_text[0].font().pixelSize() * zoom}

    before = sizes()
    assert before["card footer"] >= 10.0 and before["card numbers"] >= 10.0  # legible
    win.actions["presentation"].trigger()
    qtbot.wait(20)  # the application font reaches the widgets by events
    during = sizes()
    for name, size in before.items():
        assert during[name] >= 1.25 * size, f"{name}: {size} -> {during[name]}"
    assert legend.height() >= during["legend height"]  # laid out again, nothing clipped
    win.actions["presentation"].trigger()
    qtbot.wait(20)
    assert sizes() == before
