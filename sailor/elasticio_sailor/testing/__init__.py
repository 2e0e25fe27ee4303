"""Test harness for components run by this sailor: a broker topology per dialect, the worker as a subprocess,
fakes of the platform's services, and the pytest policy for missing prerequisites.

It ships with the package (instead of living in a tests folder) so that the sailor's own tests and the tests
of a component using the sailor share one harness, also once the sailor lives in a repository of its own.
Only `plugin` imports pytest; everything else needs nothing beyond the sailor's dependencies.
"""
