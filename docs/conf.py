"""Sphinx configuration of the xploss documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``tests/test_docs.py`` runs exactly this). Pages are MyST markdown, the API
reference is generated from the numpydoc docstrings, and the pages under
``_generated/`` (stability gallery, support matrix, benchmark table) are
written by ``docs/generate.py`` when this file is read, at the start of every build, from the same
registry, adapters and benchmark output the code uses.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import generate  # noqa: E402

import xploss  # noqa: E402

project = "xploss"
author = "the xploss developers"
copyright = "2026, the xploss developers"
release = version = getattr(xploss, "__version__", "0.1.0")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_design",
    # MathJax served from the built site itself: pages render math offline.
    "sphinx-mathjax-offline",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
nitpicky = False

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = "xploss"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
# The left sidebar lists a section's pages: only the API reference has them.
# Elsewhere the wide tables and the gallery's figures take its width.
# ("*" stops at "/": the function pages under _generated/api/ keep theirs.)
html_sidebars = {"*": [], "_generated/*": [], "_generated/gallery/*": []}

# Written before Sphinx looks for source files, so the generated pages (and the
# API stubs autosummary makes from them) are part of every build.
generate.main(DOCS / "_generated")
