"""Null trajectories and their bands, for the main runs and the beta2 sweep."""
