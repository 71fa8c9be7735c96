"""Trained models in the designer: .gsmodel files and the export dialog."""
