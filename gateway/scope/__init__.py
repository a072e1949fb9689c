"""Scope: may this operator, under this grant, use this data for this action?

Stage: data flow step 1 (at submission, every dataset and column a job
needs) and step 5 (at release, every column each output derives from).

How a decision is made (``policy.ScopePolicy.decide``):

1. The request (subject, grant, object, action) is checked for shape
   (``objects.request_problem``): ids, one of the four actions, an object
   ``dataset:<name>`` or ``dataset:<name>/column:<column>``. A malformed
   request is denied here, before Casbin sees it, so no request carries a
   "*" pattern.
2. The policy's memory is brought up to the store's committed revision
   (``store.ScopeRuleAdapter``): one single-row read, a reload when another
   process changed the lines.
3. Casbin (``policies/model.conf``) looks only at the lines of that grant
   and action: one deny line beats any allow line; no matching line is a
   denial by default.
4. The ``objects.Decision`` names the line that decided, or why it was
   denied; the caller writes it to the audit log. ``check_*`` raises
   ``errors.ScopeDenied`` on a denial, ``can_*`` returns a bool.

The lines themselves: a grant's datasets and columns become one allow line
per object and action (``lines.grant_lines``), written in the grant's own
transaction (``lines.ConnectionScopeAdapter``); a suspension adds deny lines
(object "*"), a revocation removes the grant's lines.

Modules: ``objects`` (objects, lines, decisions: pure values), ``errors``,
``store`` (the ``scope_rules`` table and its revision), ``lines`` (a grant's
lines), ``policy`` (the Casbin-backed policy and its decisions).
"""
