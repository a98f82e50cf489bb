"""Core plumbing shared by the workbook: name registries and typed YAML configuration.

``Registry``           name → object registry (``@REG.register("name")``, ``REG.build("name", ...)``).
``load_config_file``   YAML mapping with ``_base_`` inheritance and ``_delete_`` replacement.
``merge``              deep merge of two mappings.
``apply_overrides``    dotted-key overrides (``{"phase2.lr": 1e-3}``).
``from_dict``          type-checked construction of (nested) dataclasses from plain mappings.
``to_dict``            the inverse: a dataclass instance as a plain JSON-able dict.
``flatten``            nested mapping → dotted keys.
"""

from .config import ConfigError, apply_overrides, flatten, from_dict, load_config_file, merge, to_dict
from .registry import Registry, UnknownNameError

__all__ = [
    "Registry",
    "UnknownNameError",
    "ConfigError",
    "load_config_file",
    "merge",
    "apply_overrides",
    "from_dict",
    "to_dict",
    "flatten",
]
