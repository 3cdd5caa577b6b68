"""Renderings of explanations: HTML pages."""
