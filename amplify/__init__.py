"""Amplify: a self-hosted social amplification scheduler for advocacy teams."""

__version__ = "0.1.0"
