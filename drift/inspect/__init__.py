"""Analyse anyone's training run: the trajectory-geometry test and its null models on checkpoint series this
project did not write (Hugging Face, nanoGPT-style, plain state-dict directories). formats.py reads them; cli.py
is the command, `python -m drift.inspect --help`.
"""
