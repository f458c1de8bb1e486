"""The few ImageNet-1k class names pvq needs (indices in the standard 0..999 order)."""

from __future__ import annotations

__all__ = ["BUILDING_CLASSES", "IMAGENET_NAMES"]

# Buildings and building parts: what a photo of a temple (scikit-learn's china.jpg) should be called
BUILDING_CLASSES: dict[int, str] = {
    406: "altar",
    425: "barn",
    437: "beacon",
    442: "bell cote",
    449: "boathouse",
    483: "castle",
    497: "church",
    538: "dome",
    580: "greenhouse",
    663: "monastery",
    668: "mosque",
    698: "palace",
    727: "planetarium",
    832: "stupa",
    858: "tile roof",
    900: "water tower",
}
IMAGENET_NAMES: dict[int, str] = {
    **BUILDING_CLASSES,
    975: "lakeside",
    985: "daisy",
    947: "mushroom",
    599: "honeycomb",
}
