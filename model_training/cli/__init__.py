"""The commands, one thin module each: parse the arguments, call one library function, report.

Run as ``python -m model_training.cli.<command> --help``; ``python -m model_training.cli`` lists them.
"""
