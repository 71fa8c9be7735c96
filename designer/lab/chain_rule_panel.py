"""Chain-rule inspector: how the gradient of the selected wire or node was made, in numbers.

Select a wire after a training step: the panel shows the upstream gradient that arrived at
the wire's consumer, the consumer's local derivative for that input, and their product (the
gradient backprop stored on the wire). Select a node: its gradient as the sum of what its
out-wires carry back (fan-out), and for a scalar Parameter the whole chain of local
derivatives from the loss back to it.

The numbers come from `engine.lab.chain_rule` run on a private replay of the last step (see
`designer.lab.replay`): the same batch and the weights that step used, so they match a hand
calculation exactly. The training process works the explanation out and sends only it
(`designer.lab.chain_rule_answer`); the panel keeps the answer for its target until the next
training report.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from designer import theme
from designer.lab.chain_rule_answer import ChainRuleAnswer, EdgeBlock, NodeAnswer, explain_target
from designer.lab.formula_html import dfrac, equation, esc, lines, num, signed_sum, value_span

REFRESH_MS = 400  # at most this often while training runs
MAX_LISTED = 8  # tensors up to this many numbers are listed in full

INTRO = (
    "<b>What am I looking at?</b> Backpropagation walks from the loss back through the graph. "
    "At every node it multiplies the gradient that arrived from above (the "
    "<i>upstream</i> gradient ∂L/∂node) by the node's own <i>local derivative</i> for the "
    "input in question: that product is the gradient on the wire. Where a value feeds "
    "several nodes (fan-out), the gradients coming back along its wires are added. "
    "Select a wire or a node after a training step (Train → Step).")


class ChainRulePanel(QWidget):
    """Dock contents: a header and a rich-text view of the explanation."""

    def __init__(self, session, scene, parent=None):
        super().__init__(parent)
        self.session, self.scene = session, scene
        self.answer: ChainRuleAnswer | None = None  # the last answer, for `answer.target`
        self.target: tuple[str, object] | None = None  # ("edge", EdgeSpec) | ("node", id)
        self.product_text = ""  # plain text of the main product (edge) — for tests/copying
        self.sum_text = ""  # plain text of the fan-out sum (node)
        self.path_text = ""  # plain text of the parameter's path product(s)
        self.explanation = None  # the last engine explanation shown
        self.path_explanation = None  # and the parameter's path explanation
        self._pending = False
        self._stale = True

        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.view = QTextBrowser()
        self.view.setObjectName("chain_rule_view")
        self.view.setOpenLinks(False)
        self.view.setFrameShape(QTextBrowser.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.request)
        scene.selectionChanged.connect(self._on_selection)
        session.report.connect(self._on_report)
        session.weights_reset.connect(self._on_reset)
        self._show_intro()

    # -- following the selection and the training ---------------------------------------
    def _on_selection(self) -> None:
        try:
            edges = self.scene.selected_edges()
            nodes = self.scene.selected_node_ids()
        except RuntimeError:  # scene being destroyed
            return
        if len(edges) == 1 and not nodes:
            self.target = ("edge", edges[0])
        elif len(nodes) == 1 and not edges:
            self.target = ("node", nodes[0])
        else:
            self.target = None
        if self._current():
            self.render()
        else:
            self.request()

    def _current(self) -> bool:
        """Whether the kept answer is about the target and the last step."""
        return (self.answer is not None and not self._stale
                and self.answer.target == self.target)

    def _on_report(self, _report) -> None:
        self._stale = True
        if self.target is not None and self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def _on_reset(self) -> None:
        self.answer = None
        self._stale = True
        self.request()

    def request(self) -> None:
        """Ask the training process to explain the target (one request at a time)."""
        if self.target is None:
            self.render()
            return
        if self._pending:
            return
        self._pending = True
        self._stale = False
        target = self.target
        self.session.run_on_worker(explain_target(target), self._on_answer,
                                   lambda message: self._on_error(message, target))

    def _on_answer(self, answer: ChainRuleAnswer) -> None:
        self._pending = False
        self.answer = answer
        if answer.target != self.target:  # the selection moved on while it was worked out
            self.request()
        self.render()

    def _on_error(self, message: str, target) -> None:
        self._pending = False
        self.answer = None
        if target != self.target:  # about a wire or node no longer selected
            self.request()
            return
        self._message(message)

    # -- rendering ----------------------------------------------------------------------
    def _show_intro(self) -> None:
        self.header.setText("<b>Chain rule</b>")
        self.view.setHtml(_page(f"<p>{INTRO}</p>"))

    def _message(self, text: str) -> None:
        self.product_text = self.sum_text = self.path_text = ""
        self.explanation = None
        self.view.setHtml(_page(f"<p>{esc(text)}</p><hr/><p>{INTRO}</p>"))

    def render(self) -> None:
        """Show the kept answer for the current target (or that it is being worked out)."""
        self.product_text = self.sum_text = self.path_text = ""
        self.explanation = self.path_explanation = None
        if self.target is None:
            self._show_intro()
            return
        kind, what = self.target
        label = (f"wire {what.src} → {what.dst}.{what.dst_port}" if kind == "edge"
                 else f"node {what}")
        self.header.setText(f"<b>Chain rule · {esc(label)}</b>")
        r = self.answer
        if r is None or r.target != self.target:
            self.view.setHtml(_page("<p>Working out the last step…</p>"))
            return
        if kind == "edge":
            self.explanation = r.edge.ex
            body = _edge_block(r.edge, self)
        else:
            body = self._node_html(what, r.node)
        n = r.batch
        when = (f"training step {r.step}" if r.after_step
                else "the first batch, before any step (weights as initialised)")
        note = (f"<p style='color:{theme.current().muted_text}'>Numbers of {when}: a batch of "
                f"{n} sample{'s' if n != 1 else ''}, the weights that step used, "
                f"{r.dtype}.</p>")
        self.view.setHtml(_page(body + note + f"<hr/><p>{INTRO}</p>"))

    # nodes -------------------------------------------------------------------------------
    def _node_html(self, node_id: str, answer: NodeAnswer) -> str:
        if answer.is_loss:
            self.product_text = "1"
            return (equation([dfrac("L", "L"), "=", "<b>1</b>"], 13)
                    + "<p>The loss is where backpropagation starts: the gradient of the "
                    "loss with respect to itself is 1.</p>")
        ex = answer.ex
        parts = []
        if answer.path is not None:
            parts.append(self._path_html(node_id, answer.path))
            parts.append("<h4>The last link: the wire out of it</h4>")
        pal = theme.current()
        if len(ex.shares) > 1:
            parts.append("<h4>Fan-out: the gradients coming back are added</h4>")
            if all(s.grad.scalar is not None for s in ex.shares):
                vals = [s.grad.scalar for s in ex.shares]
                self.sum_text = f"{signed_sum(vals)} = {num(ex.total.scalar)}"
                via = []
                for k, sh in enumerate(ex.shares):
                    via += ([] if k == 0 else ["+"]) + [dfrac("L", node_id),
                                                        f"<sub>via {esc(sh.dst)}</sub>"]
                parts.append(lines([
                    [dfrac("L", node_id), "="] + via,
                    ["=", value_span(signed_sum(vals))],
                    ["=", value_span(num(ex.total.scalar), pal.selection, True)]], 12))
            else:
                self.sum_text = (f"Σ of {len(ex.shares)} wire gradients, ‖·‖₂ = "
                                 f"{num(ex.total.summary.l2)}")
                parts.append(f"<p>{esc(self.sum_text)}</p>")
            rows = "".join(
                f"<tr><td>{esc(node_id)} → {esc(s.dst)}.{esc(s.port)}</td>"
                f"<td align='right'>{_tensor_text(s.grad)}</td></tr>" for s in ex.shares)
            parts.append("<table cellspacing='0' cellpadding='3' width='100%'>"
                         "<tr><th align='left'>wire (in the order backward added them)</th>"
                         f"<th align='right'>gradient</th></tr>{rows}</table>")
        elif answer.single is not None:
            share = ex.shares[0]
            parts.append(f"<p>{esc(node_id)} feeds one node ({esc(share.dst)}), so its gradient "
                         "is the gradient on that wire:</p>")
            parts.append(_edge_block(answer.single, self))
        if answer.params:
            parts.append(_param_note(answer))
        self.explanation = ex
        return "".join(parts)

    def _path_html(self, node_id: str, pe) -> str:
        self.path_explanation = pe
        pal = theme.current()
        out = [f"<h4>The whole chain from the loss back to {esc(node_id)}</h4>"]
        if len(pe.paths) > 1:  # the answer first: both paths and their sum fit a small dock
            rows = "".join(
                f"<br>path {k + 1} via {esc(' → '.join(t.nodes[1:-1]))}: {esc(num(t.product))}"
                for k, t in enumerate(pe.paths))
            out.append(f"<p style='font-family:\"{theme.NUMBER_FAMILY}\"'><b>∂L/∂{esc(node_id)}"
                       f" = {esc(signed_sum([t.product for t in pe.paths]))} = "
                       f"{esc(num(pe.total))}</b>{rows}</p>")
        texts = []
        for k, term in enumerate(pe.paths):
            if len(pe.paths) > 1:
                out.append(f"<p><b>path {k + 1}</b>: {esc(' → '.join(term.nodes))}</p>")
            fr = []
            for j, f in enumerate(term.factors):
                top, bottom = f.label[1:].split("/∂", 1)
                fr += ([] if j == 0 else ["·"]) + [dfrac(top, bottom)]
            head = [dfrac("L", node_id), "="] if len(pe.paths) == 1 else ["="]
            if all(f.value is not None for f in term.factors):
                # each number named by what it is: 0.134591 [2(h − y)/N] · 2 [c] · 1 [Add]
                nums = " · ".join(f"{num(f.value)} [{f.name}]" for f in term.factors)
                texts.append(f"{nums} = {num(term.product)}")
                out.append(lines([head + fr, ["=", value_span(nums)],
                                  ["=", value_span(num(term.product), pal.selection, True)]],
                                 12))
            else:
                texts.append(num(term.product))
                out.append(lines([head + fr, ["=", value_span(num(term.product))]], 12))
        if len(pe.paths) > 1:
            total = num(pe.total)
            sums = signed_sum([t.product for t in pe.paths])
            texts.append(f"{sums} = {total}")
            out.append("<p>Both paths contribute; their products are added:</p>")
            out.append(lines([[dfrac("L", node_id), "=", value_span(sums)],
                              ["=", value_span(total, pal.selection, True)]], 12))
            if pe.fan_out:
                texts.insert(len(texts) - 1, pe.fan_out)
                out.append(f"<p>{esc(pe.fan_out)}.</p>")
        self.path_text = "\n".join(texts)
        ok = "✓ equals" if pe.error <= 1e-12 * max(1.0, abs(pe.param_grad)) else "≠"
        out.append(f"<p>{ok} the gradient backprop stored for {esc(node_id)}: "
                   f"{num(pe.param_grad)}</p>")
        return "".join(out)



def _param_note(answer: NodeAnswer) -> str:
    rows = "".join(
        f"<tr><td>∂L/∂{esc(key)}</td><td>{'×'.join(map(str, shape))}</td>"
        f"<td align='right'>‖·‖₂ {num(l2)}</td></tr>" for key, shape, l2 in answer.params)
    return (f"<h4>Its learnable tensors</h4><p>{esc(answer.formula)}</p>"
            f"<table cellspacing='0' cellpadding='3'>{rows}</table>"
            "<p>Open the Optimizer State panel to follow one of them over time.</p>")


def _edge_block(block: EdgeBlock, panel: ChainRulePanel | None) -> str:
    pal = theme.current()
    ex, rule = block.ex, block.rule
    dst = "L" if block.into_loss else ex.dst
    via = f" (via {ex.dst})" if block.fan_out else ""
    lhs = [dfrac("L", ex.src)] + ([f"<sub>{esc(via.strip(' ()'))}</sub>"] if via else [])
    sym = rule.split(" = ", 1)[1] if rule else ""
    out = []
    if ex.local_kind == "scalar":
        u, loc, pr = num(ex.upstream.scalar), num(ex.local.scalar), num(ex.product.scalar)
        product = f"{u} · {loc} = {pr}" if dst != "L" else pr
        if panel is not None:
            panel.product_text = product
        if dst == "L":
            rows = [lhs + ["=", dfrac("L", ex.src)], ["=", value_span(pr, pal.selection, True)]]
        else:
            rows = [lhs + ["=", dfrac("L", dst), "·", dfrac(dst, ex.src)]]
            if sym and sym != loc:
                rows.append(["=", value_span(f"{u} · ({sym})")])
            rows += [["=", value_span(f"{u} · {loc}")],
                    ["=", value_span(pr, pal.selection, True)]]
        out.append(lines(rows, 12))
        table = [("upstream gradient", "∂L/∂" + dst,
                  "what arrived at " + ex.dst + " from the loss", u),
                 ("local derivative", f"∂{dst}/∂{ex.src}",
                  f"{ex.op}: {rule}" if rule else ex.op, loc),
                 ("product", "", "upstream × local", pr),
                 ("stored by backward", "", "the gradient on this wire",
                  num(ex.edge_grad.scalar))]
    else:
        how = {"elementwise": "element by element: each number's upstream gradient times "
                              "its own local derivative (⊙)",
               "jacobian": "the local derivative is a Jacobian matrix "
                           f"({'×'.join(map(str, ex.local.shape))}); product = Jᵀ · upstream",
               "summed": "the Jacobian is too large to list; the product is Jᵀ · upstream"}
        symbol = "⊙" if ex.local_kind == "elementwise" else "ᵀ·"
        if dst == "L":  # straight into the loss: its own derivative, no upstream factor
            out.append(lines([lhs + ["="] + ([value_span(sym)] if sym else [dfrac("L", ex.src)])],
                             12))
            out.append("<p>This wire goes straight into the loss, so its gradient is the "
                       "loss's own derivative (the upstream gradient is ∂L/∂L = 1).</p>")
        else:
            out.append(lines([lhs + ["=", dfrac("L", dst), symbol, dfrac(dst, ex.src)]], 12))
            out.append(f"<p>{esc(how[ex.local_kind])}.</p>")
        if panel is not None:
            panel.product_text = _tensor_plain(ex.product)
        table = [("upstream gradient", "∂L/∂" + dst, "", _tensor_plain(ex.upstream)),
                 ("local derivative", f"∂{dst}/∂{ex.src}", rule or ex.op,
                  _tensor_plain(ex.local)),
                 ("product", "", "", _tensor_plain(ex.product)),
                 ("stored by backward", "", "", _tensor_plain(ex.edge_grad))]
    rows = "".join(
        f"<tr><td><b>{esc(a)}</b></td><td>{esc(b)}</td>"
        f"<td style='color:{pal.muted_text}'>{esc(c)}</td>"
        f"<td align='right'>{esc(v)}</td></tr>" for a, b, c, v in table)
    out.append(f"<table cellspacing='0' cellpadding='3' width='100%'>{rows}</table>")
    big = max(1.0, abs(ex.edge_grad.summary.min), abs(ex.edge_grad.summary.max))
    same = ex.error <= 1e-12 * big
    out.append(f"<p>{'✓ the product is exactly what backprop stored' if same else '≠'}"
               f"{'' if same else ' max difference ' + num(ex.error)}.</p>")
    return "".join(out)


def _tensor_plain(view) -> str:
    if view.scalar is not None:
        return num(view.scalar)
    if view.values is not None and view.size <= MAX_LISTED:
        return "[" + ", ".join(num(v, 4) for v in view.values) + "]"
    shape = "×".join(map(str, view.shape))
    return f"{shape}: mean {num(view.summary.mean, 4)}, ‖·‖₂ {num(view.summary.l2, 4)}"


def _tensor_text(view) -> str:
    return esc(_tensor_plain(view))


def _page(body: str) -> str:
    pal = theme.current()
    size = 10 * theme.text_scale()  # large in presentation mode
    return (f"<html><body style='color:{pal.text}; font-size: {size:g}pt;'>{body}</body></html>")
