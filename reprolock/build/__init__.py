"""``reprolock build``: the image of a locked target assembled from the lock, without a
Docker daemon — the same lock gives the same layers, config and manifest digests.

The stages take values and byte streams; `reprolock.api.build` does the fetching, the
pulling and the writing:

- `tree`: a layer being assembled, its paths resolved through the layers below it (a
  Debian's ``/lib`` → ``usr/lib`` link is followed as dpkg follows it);
- `tar`: a tree written as a deterministic layer tar, compressed with fixed headers;
- `deb` and `scripts`: ``.deb`` files read within bounds, and the rule for maintainer
  scripts; `apt`: the apt layer with dpkg's database;
- `python`: the venv filled by the ``installer`` library, byte-compiled or not;
- `context`: the ``[image] copy`` files; `config`: the image config and manifest;
- `record`: the digests a build records for ``verify image`` to compare.
"""
