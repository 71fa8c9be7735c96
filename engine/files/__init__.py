"""Model files: the .gsmodel container and a strict safetensors reader and writer."""
