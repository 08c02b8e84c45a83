"""The arq release whose API this package mirrors (asyncjobs's own: asyncjobs.__version__)."""

VERSION = "0.28.0"
