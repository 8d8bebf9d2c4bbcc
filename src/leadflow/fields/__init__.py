"""Custom fields: each company's field definitions per entity (deal, person,
organization, product; leads share the deal set) and the validation of the values that
records carry in their `custom_fields` column.

It sits below the packages whose records carry values (leads, deals, contacts, products):
they call `values.validate` on what a client sends and store the result through their own
repository; this package writes only its own definitions, and tells the others about a
deleted field or option with domain events."""
