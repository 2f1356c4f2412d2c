"""The base of errors caused by what a user supplied (a file, a config, a formula).

Such errors carry a message meant for that user (naming the file, row, field or limit); the CLI
prints it without a traceback and the API turns it into a 4xx answer.
"""


class UserError(Exception):
    """Bad input from a user: the message says what is wrong and where."""
