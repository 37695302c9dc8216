"""The documentation site's tooling: MkDocs hooks and the generators of its reference pages."""
