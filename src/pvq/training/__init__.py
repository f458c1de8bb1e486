"""pvq.training (see DESIGN.md)."""

__all__: list[str] = []
