"""One module per stage; each exposes one pure function named for its verb."""
