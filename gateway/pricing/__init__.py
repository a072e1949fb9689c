"""Price classes, prices and charges of data products (001 authorized-operation art. 26;
004 art. 23; 002 art. 24).

In the order a price is made and used: ``model`` (the classes, which may charge, a
unit's price from a stored basis), ``basis`` (a basis checked for its class against the
product's category and the settings; cost plus frozen), ``service`` (set a price, with a
registration or later; record charges, an operator's sales and encrypted calls),
``router`` (REST), ``errors``. The cost side is :mod:`gateway.costs`."""
