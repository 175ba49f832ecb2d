"""Measuring a bundle: metrics, figures, the colour-shift stress test, evaluation, batch scoring, and the shipped
example tiles picked by outcome."""
