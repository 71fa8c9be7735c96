"""Learning lab: panels and dialogs that show how gradient descent and backprop work."""
