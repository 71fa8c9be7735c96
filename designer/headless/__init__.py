"""Scripted runs without a user: train N steps and save a screenshot."""
