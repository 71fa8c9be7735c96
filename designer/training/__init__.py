"""A training run and what runs and shows it: run model, worker, session, panel, loss plot."""
