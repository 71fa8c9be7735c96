"""pyqtgraph plots of training progress."""
