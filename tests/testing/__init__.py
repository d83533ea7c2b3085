"""Tests of keyfob.testing, the local emulator, spoken to with urllib only."""
