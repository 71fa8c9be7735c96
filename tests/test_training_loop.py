"""Learn → The Training Loop: the cycle follows the stepper; the initial weights are honest."""

import numpy as np

from designer.lab.backprop_stepper import BACKWARD_DONE, FORWARD_DONE, UPDATED
from designer.training import session as states
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.lab.training_loop import initial_weights, stage_of
from engine.ops.layers import describe_init
from tests.gui import EXAMPLES, make_window, open_example


def test_initial_weights_are_the_weights_training_starts_from():
    spec = load_graph(EXAMPLES / "xor_mlp.json")
    weights = {w.node: w for w in initial_weights(spec, seed=0)}
    program = compile_graph(spec, seed=0)
    for e in program.entries:
        if e.name == "weight":
            np.testing.assert_array_equal(weights[e.node].values,
                                          program.param_value(e).reshape(-1))
    assert weights["h1"].description == describe_init("xavier", 2, 8)
    assert "√(6/10) = 0.7746" in weights["h1"].description
    assert np.abs(weights["h1"].values).max() <= 0.7746
    assert "σ = √(2/fan_in) = √(2/8) = 0.5" in describe_init("he", 8, 1)


def test_the_lit_stage_follows_step_forward_backward_update(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, size=(1280, 800))
    qtbot.wait(30)
    session = open_example(qtbot, win, "xor_mlp.json")
    win.actions["learn_training_loop"].trigger()
    lesson = win.training_loop
    assert lesson.dock.isVisible()
    qtbot.waitUntil(lambda: lesson.view.layer_box.count() == 2, timeout=5000)
    assert "Xavier uniform" in lesson.view.init_text.text()
    cycle = lesson.view.cycle
    assert cycle.lit == ("input", "weights")
    st = win.lab_training.stepper
    st.set_delay(0)
    for action, phase in ((st.forward_action, FORWARD_DONE), (st.backward_action, BACKWARD_DONE),
                          (st.apply_action, UPDATED)):
        action.trigger()
        qtbot.waitUntil(lambda p=phase: st.phase == p, timeout=5000)
        assert cycle.lit == stage_of(phase) and cycle.lit
    assert cycle.lit == ("update",)
    session.play()
    qtbot.waitUntil(lambda: session.state == states.RUNNING, timeout=5000)
    assert len(cycle.lit) == 6
    session.pause()
