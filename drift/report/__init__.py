"""Evidence readers, claims, LaTeX tables, figures and the plotting style."""
