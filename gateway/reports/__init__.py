"""Reports for the implementing agency and the public: the operator's annual operating
report, the agency's disclosure, each provider's usage report (issue 17; 001 art. 24,
25, 35, 36; 004 art. 29, 30; 003). Built from the audit log and the store
(``operator``, ``provider``, ``disclosure``), laid out by ``formats`` and drawn by
``render``; served by ``router``."""
