"""Test and benchmark machinery that is not part of the product (synthetic visitors, references)."""
