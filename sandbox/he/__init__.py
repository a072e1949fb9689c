"""Privacy-computing products with homomorphic encryption (TenSEAL).

A consumer asks a question about the authorized data without the operator or
the platform seeing the question, and the data never leaves:

- ``verify``: encrypted verification (BFV). "Is the tax band of enterprise X
  3?" answers match / no match and nothing else.
- ``score``: encrypted scoring (CKKS). A released linear model scores an
  encrypted feature vector; the consumer decrypts the score.
- ``client``: the consumer's side (keys, queries, answers).
- ``protocol``: what both sides agree on (claim hashing, buckets);
  ``params``: parameters, the 128-bit floor and the check of a consumer's
  context; ``wire``: a strict reader of TenSEAL's serialized messages.

Invariants: the server side takes and returns bytes and works with a public
context only; a context carrying a secret key is refused before SEAL parses
it; every refusal is an ``HEInputError`` (a ``ValueError``). No HTTP, no
audit, no rate limits here: the gateway wires products, approval, limits and
audit around these functions.
"""
