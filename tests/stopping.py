"""A run stopped on purpose, as the tests of several modules need one."""


class StopAt:
    """A step callback that interrupts the run after step `step` (as Ctrl-C would)."""

    def __init__(self, step):
        self.step = step

    def __call__(self, report):
        if report.step == self.step:
            raise KeyboardInterrupt
