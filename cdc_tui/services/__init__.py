"""Operations the CLI and the console both call."""
