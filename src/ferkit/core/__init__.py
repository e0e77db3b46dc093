"""The ground floor every package stands on: labels, errors, atomic writes, the console,
figures and the version. Imports nothing else of ferkit."""
