"""Small builders shared by the tests."""

from engine.core.spec import GraphSpec


def make_spec(nodes, edges) -> GraphSpec:
    """nodes: (id, op, params); edges: "src>dst.port" (port defaults to "in")."""
    def edge(text):
        src, dst = text.split(">")
        return {"from": f"{src}.out", "to": dst if "." in dst else f"{dst}.in"}
    return GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": i, "op": op, "params": p} for i, op, p in nodes],
        "edges": [edge(e) for e in edges],
    })
