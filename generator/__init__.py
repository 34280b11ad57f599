"""pipeproof: a CI/CD pipeline an auditor will accept, generated, hardened, proven and kept current."""

__version__ = "0.2.0.dev0"
