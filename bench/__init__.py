"""Benchmarks (see bench/README.md)."""

import argparse


def at_least_one(text: str) -> int:
    """argparse type for counts (--runs, --messages...): a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
