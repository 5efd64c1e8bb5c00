"""dialwave: outbound voice campaigns for AI voice agents."""

__version__ = "0.1.0"
