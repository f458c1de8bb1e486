"""pvq.tensors (see DESIGN.md)."""

__all__: list[str] = []
