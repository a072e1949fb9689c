"""What is disclosed to the public (001 authorized-operation art. 24-25; 004 art. 30; 003):
the registered products, the grantees with content, scope and term, and the yearly use
of public data. Facts about data products and grants, never about a data subject."""
