"""pvq.layerwise (see DESIGN.md)."""

__all__: list[str] = []
