"""Build a deployment package from a rendered cookiecutter folder.

The cookiecutter hooks are thin: they put this folder on ``sys.path`` and
call into it. ``answers``, ``archive``, ``documents``, ``reference_data`` and
``stopping`` need the standard library only (``reference_data`` reads Parquet through
pyarrow when it is importable); ``artifacts``, ``demo``, ``monitoring`` and
``build`` load models and need scikit-learn.
"""
