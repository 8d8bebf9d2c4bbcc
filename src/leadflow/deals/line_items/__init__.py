"""Line items of a deal: products of the catalog with quantity, price, discount and tax.

A line item's `sum` is quantity x unit price x (1 - discount/100) x (1 + tax/100),
rounded half-up to cents, and stored. All line items of a deal share one currency: the
deal's value currency when it has one, else that of its other line items, else the
product's; a product priced in another currency is refused (422). When the deal has
`value_from_products`, its value follows the total of its line items and each change
of it is written to the changelog.

Layered like a domain package (router, schemas, repository, service) but kept under
deals: a line item is a deal's sub-resource and its `deal_product` table is deals'.
"""
