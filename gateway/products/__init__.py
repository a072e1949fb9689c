"""Data products and their registration by the Chongqing registration measures (001).

``model`` (the three state tables), ``codes`` (registration codes and validity),
``procedure`` (applications: apply, accept, review, publicise, register, refuse),
``objections`` (raised during publicity, resolved once), ``desk`` (each action in
its transaction, grants checked), ``service`` (registered products: renew, revoke,
and whether one may be offered), ``sweep`` (renewal notices, cancellation of
unrenewed registrations), ``router``/``schemas`` (``/v1/products``).
"""
