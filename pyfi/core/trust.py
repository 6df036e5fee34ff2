"""Code trust: which git repositories pyfi may fetch processor code from, and which module of one may run.

The allow-list is a tuple of ``fnmatch`` patterns set by an administrator
(``[git] allow`` in the ini, or ``PYFI_GIT_ALLOW``). It is passed in
explicitly (core never reads configuration): on the ``Actor`` for ``add`` /
``update processor``, and to the agent's ``Deployer``, which checks again
before every checkout, so a repository that is not allowed is never cloned.
An empty allow-list means "no restriction" (the single-user embedded default).

Patterns are matched against the URL without its credentials, so
``https://github.com/acme/*`` allows ``https://TOKEN@github.com/acme/x.git``
but not ``https://github.com@evil.example/acme/x.git``. URLs with ``..``
path segments are refused outright: ``acme/../evil`` must not pass for
``acme/*``.
"""
from __future__ import annotations

import sys
from fnmatch import fnmatchcase
from typing import Sequence
from urllib.parse import unquote

from pyfi.errors import InvalidInput, PermissionDenied
from pyfi.masking import mask_url, strip_credentials


def repo_allowed(url: str, allow: Sequence[str]) -> bool:
    """True when *url* matches one of the *allow* patterns (or there are none)."""
    if not allow:
        return True
    identity = strip_credentials(url.strip())
    if _has_dot_segments(identity):
        return False
    return any(fnmatchcase(identity, pattern) for pattern in allow)


def check_repo(url: str, allow: Sequence[str]) -> None:
    """Raise PermissionDenied naming the repository unless the allow-list admits it."""
    if repo_allowed(url, allow):
        return
    raise PermissionDenied(
        f"git repository {mask_url(url)} is not in the allowed list ({', '.join(allow)})",
        "use an allowed repository, or ask an administrator to add a pattern to [git] allow",
    )


def _has_dot_segments(url: str) -> bool:
    decoded = unquote(url).replace("\\", "/")
    return any(part in (".", "..") for part in decoded.split("/"))


#: top-level packages a processor's module can never be: they are not its repository's code
NOT_PROCESSOR_CODE = frozenset({"pyfi", "__main__"})


def check_module_name(module: str) -> None:
    """Refuse a module that is, by its name alone, not a file of a repository: the standard library or pyfi.

    Where the module's file really comes from is checked when the code is
    deployed (:func:`pyfi.worker.loader.load_module`): it must be inside the
    processor's checkout, never the agent's site-packages.
    """
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in NOT_PROCESSOR_CODE:
        raise InvalidInput(
            f"module {module!r} is {'pyfi itself' if top in NOT_PROCESSOR_CODE else 'part of the standard library'}, "
            "not code of the processor's repository",
            "give the dotted path of a module file in the repository (-m/--module), e.g. sample or pkg.tasks",
        )
