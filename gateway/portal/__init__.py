"""The public portal (no sign-in): the registered products in their two classes with their
price basis, the grantees with content, scope and term, and the yearly use of public
data, as HTML pages under ``/portal`` and open data under ``/v1/public`` (001
authorized-operation art. 24-26; 004 art. 30; 003). Everything shown comes from
``gateway.disclosure.facts``: metadata and counts, never a data value."""
