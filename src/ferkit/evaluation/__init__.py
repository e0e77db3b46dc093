"""Measuring models: metrics, McNemar tests, figures and the HTML/Markdown report of
`ferkit evaluate`. No torch."""
