"""Reports of benchmark runs and of the regression gate, and exports of saved runs to other tools.

The submodules are imported on their own (``perfsuite.report.markdown``,
``perfsuite.report.terminal``, ``perfsuite.report.exports``), so that importing one report
does not load the statistics stack of another.
"""
