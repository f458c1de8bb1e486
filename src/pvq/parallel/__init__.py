"""pvq.parallel (see DESIGN.md)."""

__all__: list[str] = []
