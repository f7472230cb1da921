"""What the lessons (`lessons/*.ipynb`) import besides the library: the exercises' checker
(`exercises`) and the diagrams' boxes and arrows (`pictures`). They live in the package so that a
lesson copied alone into an empty folder (a download, Colab) finds them wherever tinylora is
installed. The reference never imports this package; `pictures` needs matplotlib.
"""
