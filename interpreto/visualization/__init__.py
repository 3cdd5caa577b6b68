"""Renderings of explanations: standalone HTML pages and static figures (PNG, SVG, PDF)."""
