"""The widgets layer (ipywidgets): the Stepper and the training lab, the only code that talks to a
browser. Everything below it is testable without one."""
