"""Build a deployment package from a rendered cookiecutter folder.

The cookiecutter hooks are thin: they put this folder on ``sys.path`` and
call into it. ``answers``, ``archive`` and ``documents`` need the standard
library only; ``artifacts``, ``demo`` and ``build`` load models and need
scikit-learn.
"""
