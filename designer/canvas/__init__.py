"""The node editor canvas: scene, view and the items that paint nodes, ports and wires."""
