"""Errors the user can fix: reported as one line, no traceback."""


class UserError(Exception):
  """Base class of errors the command line reports as one clear line."""


class ConfigError(UserError):
  """The configuration is invalid (unknown key, impossible scale, bad sizes, ...)."""


class DataError(UserError):
  """The data cannot be found, prepared or read."""
