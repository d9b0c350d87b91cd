"""One exception type for user-facing failures, so CLIs can print a one-line reason."""


class AvagError(RuntimeError):
    """A failure caused by the user's input (file, config, data) rather than a bug.

    The message must be one line naming the offending file or setting and what is wrong.
    """
