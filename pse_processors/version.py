"""The package version, in a module of its own so that the compiler can key caches by it
without importing the package root (which imports the compiler)."""

__version__ = "0.1.0"
