"""Rewrite the README's configuration reference from the config models."""

from pathlib import Path

from appliance.config_reference import BEGIN, END, reference_markdown

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
head, rest = text.split(BEGIN)
_, tail = rest.split(END)
readme.write_text(head + BEGIN + "\n" + reference_markdown() + "\n" + END + tail)
