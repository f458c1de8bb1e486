"""pvq.data (see DESIGN.md)."""

__all__: list[str] = []
