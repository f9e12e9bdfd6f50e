"""Widgets of the console that Textual does not ship."""
