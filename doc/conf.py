# This file is part of ts_makecalibrations.
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU
# General Public License as published by the Free Software Foundation, either version 3 of the
# License, or (at your option) any later version.
#
# This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without
# even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU
# General Public License for more details.
#
# You should have received a copy of the GNU General Public License along with this program (the
# LICENSE file at the top of the repository). If not, see <https://www.gnu.org/licenses/>.
#
# SPDX-License-Identifier: GPL-3.0-or-later

"""Sphinx configuration of the ts_makecalibrations documentation (``make doc``).

Built-in theme (alabaster) and extensions only, plus the local ``_ext/mcal_sphinx.py`` that generates
the configuration reference from the script's JSON schema. The build must pass with ``-W``.
"""

import sys
from pathlib import Path

_DOC = Path(__file__).resolve().parent
sys.path.insert(0, str(_DOC / "_ext"))
sys.path.insert(0, str(_DOC.parent / "python"))

project = "ts_makecalibrations"
author = "Rubin Observatory Telescope & Site"
copyright = "2026, Association of Universities for Research in Astronomy, Inc. (AURA)"
release = "0.1.0"
version = "0.1"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "mcal_sphinx",
]

exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
language = "en"
today = "2026-11-25"
nitpicky = False
# numpydoc `name` in docstrings: a Python cross-reference when it resolves, plain code otherwise.
default_role = "py:obj"
# Operators copy YAML and commands from these pages: keep straight quotes and double dashes.
smartquotes = False

napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []

mcal_examples_dir = "../examples"

html_theme = "alabaster"
html_title = "ts_makecalibrations 0.1.0"
html_theme_options = {
    "description": "LSSTComCam combined calibrations from a SAL Script",
    "fixed_sidebar": True,
    "page_width": "1150px",
    "sidebar_width": "250px",
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_last_updated_fmt = "2026-11-25"
