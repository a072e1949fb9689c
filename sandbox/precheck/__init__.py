"""Stage 2: static checks of a submission, before anything runs.

A Python job's code goes to ``screen`` (a lint, never the boundary: the
container is); an SQL product goes to ``sql`` (parsed and checked column by
column against the exposure policies, then rewritten by ``sql.evidence`` to
carry trusted evidence). What goes out: findings for the operator, or the
checked query and its evidence-carrying rewrite for stage 4.
"""
