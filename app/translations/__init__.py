"""The message catalogues (`<locale>/LC_MESSAGES/messages.po`, compiled to `.mo`), and the
extractor that gives pybabel the strings of theme manifests."""
