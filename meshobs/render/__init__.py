"""Renderers: the model and reports as text, json, markdown, junit, dot, mermaid. Pure: no I/O."""
