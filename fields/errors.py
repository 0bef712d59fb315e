"""The one exception type that reaches the user as a single line, not a traceback."""


class FieldsError(Exception):
    """A problem with the user's input or request: printed as one line, exit code 2."""
