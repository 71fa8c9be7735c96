"""Teaching tools on top of the engine: chain rule, gradient check, landscapes, races, sweeps."""
