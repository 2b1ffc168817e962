"""The built-in demo meshes: a scenario generator that writes realistic raw payloads."""
