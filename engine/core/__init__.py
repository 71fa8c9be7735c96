"""The core: graph format, op registry, compiler, compiled program and tensor summaries."""
