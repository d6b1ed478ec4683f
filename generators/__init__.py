"""Generators: pure renderers from the Lab model to lab files, and the writer."""
