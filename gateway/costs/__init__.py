"""Cost accounting per product and period, and the operators' statements (001
authorized-operation art. 34; 004 art. 28; 003).

``ledger`` (metered usage x the settings' unit rates, storage, revenue from charges, the
usage no product carries), ``statement`` (an operator's statement as JSON, CSV, HTML and
PDF), ``router`` (REST), ``errors``."""
