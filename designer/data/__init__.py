"""The Data dock: the table of numbers kept in the graph file, and image-folder previews."""
