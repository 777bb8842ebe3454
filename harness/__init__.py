"""In-container measurement harness.

Torch-free at import: `harness.records`, `harness.stats`, `harness.plan` and
`harness.storage` load without torch so the host side can use them.
"""

__version__ = "0.1.0"
