"""Code the tests share or launch (not collected: no test_ files)."""
