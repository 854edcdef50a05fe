"""The staff console (SPEC §17): a single-page app at ``/console/`` that uses the admin API only.

Its files are built from ``console/`` (``make console``: esbuild, from the project's npm
lockfile) into ``static/`` and shipped in the package; the blueprint serves them as they are,
under the console's own Content-Security-Policy (``trikchi.http``). docs/console.md says more.
"""
