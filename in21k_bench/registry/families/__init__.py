"""One module per benchmark family: a definition + the taxonomy -> manifest tables."""
