"""Rosey bot monitoring: inventory -> render -> steps over SSH -> verify / drill."""
