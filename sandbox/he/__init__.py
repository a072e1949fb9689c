"""Privacy-computing products with homomorphic encryption (TenSEAL): the consumer's side.

A consumer asks a question about the authorized data without the operator or
the platform seeing the question, and the data never leaves: encrypted
verification (BFV: "is the tax band of enterprise X 3?" answers match / no
match and nothing else) and encrypted scoring (CKKS: a released linear model
scores an encrypted feature vector; the consumer decrypts the score).

In the order a call passes: ``client`` makes the consumer's keys and
encrypted query, and sends a public context only; the gateway
(``gateway.he``) wires approval, rate limits and audit around the call and
hands the bytes to the evaluator, ``sandbox.container.he``, which runs in a
sandbox container (``server``: ``verify``, ``score``; ``protocol`` and
``params`` are what both sides agree on, ``wire`` a strict reader of
TenSEAL's messages); the encrypted answer comes back to ``client``, which
decrypts it.

Invariants: the evaluator takes and returns bytes and works with a public
context only; a context carrying a secret key is refused before SEAL parses
it; every refusal is an ``HEInputError`` (a ``ValueError``). No HTTP, no
audit, no rate limits here.
"""
