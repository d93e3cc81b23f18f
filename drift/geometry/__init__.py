"""Pure math on trajectory Grams: PCA, decomposition, windows, alignment, switching, fits, Fisher quotients."""
