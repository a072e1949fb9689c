"""Price classes, prices and charges of data products (001 authorized-operation art. 26;
004 art. 23; 002 art. 24)."""
