"""IPython kernel configuration of the bubble image: every kernel records the cells it runs.

It sits in the environment's own IPython directory (``sys.prefix/etc/ipython``), which IPython
reads whatever the user's profile holds, and loads ``infracalc.bubble.ipython``, which sends each
cell into the bubble's session; outside a bubble (no ``INFRACALC_API_URL``) the extension does
nothing. Same lines as ``infracalc.bubble.ipython.KERNEL_CONFIG``, which the local spawner writes.
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - given by IPython when it loads the file
c.InteractiveShellApp.extensions.append("infracalc.bubble.ipython")
