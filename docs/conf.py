"""Sphinx configuration: the pymlsem documentation site (``bash scripts/docs.sh``).

Pages are Markdown (MyST); the examples are notebooks stored as MyST text and executed on every build, so
a broken example fails the build (``nb_execution_raise_on_error``).
"""

from pymlsem.version import __version__

project = "pymlsem"
author = "pymlsem developers"
copyright = "2026, pymlsem developers"
release = __version__
extensions = ["myst_nb", "sphinx.ext.autodoc", "numpydoc"]
exclude_patterns = ["_build", "jupyter_execute"]
html_theme = "pydata_sphinx_theme"
html_title = f"pymlsem {release}"
myst_enable_extensions = ["dollarmath"]
# every notebook runs on every build (no cache): an example that no longer runs fails the build
nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_typehints = "none"  # numpydoc's parameter lists carry the types
