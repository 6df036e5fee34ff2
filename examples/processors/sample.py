"""A sample processor module: each function can be bound to a socket."""


def do_something(message):
    """Greet: the example task of the original pyfi documentation."""
    return f"Message:{message}"


def do_this(message):
    """Shout the message back."""
    return str(message).upper()


def word_count(text):
    """Count the words of a text."""
    return len(str(text).split())


def fail(message):
    """Always fails: useful to see failure events and ERROR plugs."""
    raise ValueError(f"cannot handle {message!r}")


def total(numbers):
    """Add up a list of numbers (e.g. the results of parallel word counts)."""
    return sum(numbers)
