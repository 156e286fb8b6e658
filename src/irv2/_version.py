"""irv2's version, in a module of its own so that every part of the package can read it without importing the
package root (which imports nearly everything)."""

__version__ = "0.1.0"
