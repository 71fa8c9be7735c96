"""Test set-up: Qt runs offscreen, and Qt warnings fail tests (pytest-qt)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
