"""The one exception type that the CLI turns into a one-line error and a non-zero exit."""


class FerkitError(Exception):
    """A problem with the user's input or environment, explained in one line.

    Raise it with a message that names the file (and row or member) at fault; the CLI
    prints `error: <message>` and exits with status 2, without a traceback.
    """
