"""Offline converters: one-time conversions of other layouts into files segdet reads (run by
the scripts in datasets/, never at training time)."""
