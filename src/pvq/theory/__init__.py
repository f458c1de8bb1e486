"""pvq.theory (see DESIGN.md)."""

__all__: list[str] = []
